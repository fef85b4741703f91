// Package flagenv lets the examples read every flag from an environment
// variable too: flag -jwks-url from AEGIS_JWKS_URL, and so on.
package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"
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
				if want := accepted(f.Value); want != "" {
					err = fmt.Errorf("%s (for -%s) %q: %s", name, f.Name, v, want)
				} else {
					err = fmt.Errorf("%s: %w", name, setErr)
				}
			}
		}
	})
	return err
}

// SetUsage makes fs's -h print summary, the flags with their defaults,
// every flag's variable, and an example invocation.
func SetUsage(fs *flag.FlagSet, prefix, summary, example string) {
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage of %s:\n  %s\n\nFlags:\n", fs.Name(), summary)
		fs.PrintDefaults()
		fmt.Fprintf(out, "\nEvery flag can also be set by its environment variable (a flag on the command line wins):\n")
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(out, "  %-36s -%s\n", Name(prefix, f.Name), f.Name)
		})
		fmt.Fprintf(out, "\nExample:\n  %s\n", example)
	}
}

// ExitCode is the exit status for what run returned: 0 for success and
// for -h, failed for anything else.
func ExitCode(err error, failed int) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return failed
}

// invalidValue matches the flag package's error for a value it cannot
// parse.
var invalidValue = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-([A-Za-z0-9-]+): `)

// accepted says what a flag of v's kind accepts.
func accepted(v flag.Value) string {
	g, ok := v.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case time.Duration:
		return "want a duration such as 30s, 5m or 1h"
	case int, int64, uint, uint64:
		return "want a whole number"
	case bool:
		return "want true or false"
	case float64:
		return "want a number"
	}
	return ""
}

// Explain rewrites the flag package's "invalid value" error to name the flag
// and what it accepts: `-calls "many": want a whole number`. Other errors
// pass unchanged.
func Explain(fs *flag.FlagSet, err error) error {
	if err == nil {
		return nil
	}
	m := invalidValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	f := fs.Lookup(m[2])
	if f == nil {
		return err
	}
	if want := accepted(f.Value); want != "" {
		return fmt.Errorf("-%s %q: %s", m[2], m[1], want)
	}
	return err
}
