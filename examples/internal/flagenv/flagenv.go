// Package flagenv lets the examples read every flag from an environment
// variable too: flag -jwks-url from AEGIS_JWKS_URL, and so on.
package flagenv

import (
	"flag"
	"fmt"
	"strings"
)

// Name returns the variable for a flag: prefix + the flag in upper snake case.
func Name(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Apply sets each flag of fs that was not given on the command line from its
// variable, when that is set. Call it after fs.Parse.
func Apply(fs *flag.FlagSet, prefix string, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := Name(prefix, f.Name)
		if v := getenv(name); v != "" {
			if setErr := fs.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("%s: %w", name, setErr)
			}
		}
	})
	return err
}
