package introspect_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/introspect"
)

// TestHardening2_LineBreaksInOpaqueTokenRefusedBeforeCall (issue 13,
// point 2): the syntax check before any call refuses \r and \n wherever
// they are, so a spelling with line breaks never reaches the server (the
// b64token check already did on 23f49bf; this pins it).
func TestHardening2_LineBreaksInOpaqueTokenRefusedBeforeCall(t *testing.T) {
	f := newFixture(t, nil)
	token := f.iss.OpaqueM2M("worker", "data:read")
	_, err := f.client.Introspect(context.Background(), token)
	require.NoError(t, err, "the genuine token itself is active")
	calls := f.iss.IntrospectionCalls()
	for _, tc := range []struct{ name, token string }{
		{"LF inside", token[:8] + "\n" + token[8:]},
		{"CR inside", token[:8] + "\r" + token[8:]},
		{"CRLF at the end", token + "\r\n"},
		{"LF at the start", "\n" + token},
		{"2,000 LFs inside", token[:8] + strings.Repeat("\n", 2000) + token[8:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.client.Introspect(context.Background(), tc.token)
			assert.ErrorIs(t, err, introspect.ErrMalformed)
		})
	}
	assert.Equal(t, calls, f.iss.IntrospectionCalls(), "no spelling with line breaks caused a call")
}
