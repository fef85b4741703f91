package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRunNoAuth runs the command for about a second against the no-auth
// stack.
func TestRunNoAuth(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run([]string{"-d", "1s", "-c", "4", "-hot", "2", "-fresh", "16", "-stacks", "no-auth"}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	t.Log("\n" + out.String())
	if !strings.Contains(out.String(), "| no-auth |") || !strings.Contains(out.String(), "| 0 |") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestRunRefusesUnboundedRuns(t *testing.T) {
	for _, args := range [][]string{{"-d", "61s"}, {"-d", "0s"}, {"-c", "0"}, {"-reuse", "1.5"}, {"-stacks", "nope", "-d", "1s", "-fresh", "1", "-hot", "1"}} {
		var out, errOut bytes.Buffer
		if err := run(args, &out, &errOut); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
