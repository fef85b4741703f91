// Package flagenv lets the examples read every flag from an environment
// variable too: flag -jwks-url from AEGIS_JWKS_URL, and so on. It forwards
// to github.com/olympus/aegis/internal/serverflags/flagenv, which the
// examples and cmd/aegis-authz share.
package flagenv

import (
	"flag"

	"github.com/olympus/aegis/internal/serverflags/flagenv"
)

// Name returns the variable for a flag: prefix + the flag in upper snake case.
func Name(prefix, flagName string) string { return flagenv.Name(prefix, flagName) }

// Apply sets each flag of fs that was not given on the command line from its
// variable, when that is set. Call it after fs.Parse.
func Apply(fs *flag.FlagSet, prefix string, getenv func(string) string) error {
	return flagenv.Apply(fs, prefix, getenv)
}

// SetUsage makes fs's -h print summary, the flags with their defaults,
// every flag's variable, and an example invocation.
func SetUsage(fs *flag.FlagSet, prefix, summary, example string) {
	flagenv.SetUsage(fs, prefix, summary, example)
}

// ExitCode is the exit status for what run returned: 0 for success and
// for -h, failed for anything else.
func ExitCode(err error, failed int) int { return flagenv.ExitCode(err, failed) }

// Explain rewrites the flag package's "invalid value" error to name the flag
// and what it accepts. Other errors pass unchanged.
func Explain(fs *flag.FlagSet, err error) error { return flagenv.Explain(fs, err) }
