package otelmetrics_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine they started (a
// Guard's fetches, HTTP connections) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
