package mcpguard

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sjson "github.com/segmentio/encoding/json"

	"github.com/olympus/aegis/middleware"
)

// methodCallTool is the JSON-RPC method that runs a tool.
const methodCallTool = "tools/call"

// CodeInsufficientScope is the JSON-RPC error code of the body of a 403
// insufficient_scope answer to a tools/call (in the range JSON-RPC 2.0
// leaves to implementations). The HTTP status and WWW-Authenticate challenge
// are what clients act on; the JSON-RPC body lets the SDK's client fail
// that one call instead of the whole session. Its data member is the
// RFC 9457 problem (middleware.Problem).
const CodeInsufficientScope = -32003

// toolCall is a tools/call request found in a POST body.
type toolCall struct {
	name string
	id   jsonrpc.ID
}

// toolCalls returns the tools/call requests of a JSON-RPC POST body: one
// message or a batch. It reads the body exactly as the SDK's streamable
// HTTP transport does (the same decoder, jsonrpc.DecodeMessage, and the same
// case-sensitive decoding of params), so that the tool checked is the tool
// the SDK runs. Messages it cannot decode are skipped: the SDK refuses them
// too. It never panics.
func toolCalls(body []byte) []toolCall {
	var msgs [][]byte
	var batch []sjson.RawMessage
	if err := sjson.Unmarshal(body, &batch); err == nil {
		// The SDK refuses a batch with an undecodable member; checking
		// the members that decode is at least as strict.
		for _, raw := range batch {
			msgs = append(msgs, raw)
		}
	} else {
		msgs = append(msgs, body)
	}
	var calls []toolCall
	for _, raw := range msgs {
		msg, err := jsonrpc.DecodeMessage(raw)
		if err != nil {
			continue
		}
		req, ok := msg.(*jsonrpc.Request)
		if !ok || req.Method != methodCallTool {
			continue
		}
		calls = append(calls, toolCall{name: toolName(req.Params), id: req.ID})
	}
	return calls
}

// toolName is params.name as the SDK decodes it into CallToolParamsRaw:
// case-sensitive keys. Params the SDK cannot decode name no tool it would
// run; "" is returned, which gets the default requirement.
func toolName(params json.RawMessage) string {
	var p struct {
		Name string `json:"name"`
	}
	if len(params) == 0 {
		return ""
	}
	dec := sjson.NewDecoder(bytes.NewReader(params))
	dec.DontMatchCaseInsensitiveStructFields()
	if err := dec.Decode(&p); err != nil {
		return ""
	}
	return p.Name
}

// writeToolRefusal writes the body of a refused tools/call: a JSON-RPC
// error response to the call, carrying the problem document.
func writeToolRefusal(w http.ResponseWriter, id jsonrpc.ID, e *middleware.Error) {
	msg := e.Code
	if e.Description != "" {
		msg += ": " + e.Description
	}
	data, _ := json.Marshal(middleware.Problem{
		Type:             "about:blank",
		Title:            http.StatusText(e.Status),
		Status:           e.Status,
		Detail:           e.Description,
		Error:            e.Code,
		Scope:            e.Scope,
		ResourceMetadata: e.ResourceMetadata,
	})
	body, err := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: CodeInsufficientScope, Message: msg, Data: data}})
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if err != nil {
		w.WriteHeader(e.Status)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
