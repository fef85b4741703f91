package mcpguard_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine they started (SDK
// sessions, HTTP connections, a Guard's key fetches) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
