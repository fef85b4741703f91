package mcpguard

import (
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzToolCalls: toolCalls never panics, and whenever the SDK's own
// decoder reads a single message as a tools/call, toolCalls finds it.
func FuzzToolCalls(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"a","name":"b"}}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools\/call","params":{"Name":"a"}} trailing`,
		`[`, `[]`, `null`, `"tools/call"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		calls := toolCalls(body)
		msg, err := jsonrpc.DecodeMessage(body)
		if err != nil {
			return
		}
		if req, ok := msg.(*jsonrpc.Request); ok && req.Method == methodCallTool {
			require.NotEmpty(t, calls)
			assert.Equal(t, req.ID, calls[0].id)
		}
	})
}

func TestToolCalls(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"one call", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`, []string{"a"}},
		{"a batch", `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","id":2,"method":"tools/list"},{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"b"}}]`, []string{"a", "b"}},
		{"a batch with an undecodable member", `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"1.0"}]`, []string{"a"}},
		{"no name", `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, []string{""}},
		{"name not a string", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}`, []string{""}},
		{"key case matters, as in the SDK", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"a","name":"b"}}`, []string{"b"}},
		{"not a call", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil},
		{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"a"}}`, nil},
		{"not JSON", `tools/call`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range toolCalls([]byte(tt.body)) {
				got = append(got, c.name)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
