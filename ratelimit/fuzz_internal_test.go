package ratelimit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingHandler counts the records logged at WARN or above.
type countingHandler struct{ warns atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// trimJSONSpace trims JSON's own whitespace (RFC 8259: space, tab, LF, CR)
// and nothing else.
func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

// requireValidLimit checks an accepted value against the value rules,
// independently of parseLimit: raw is a valid JSON value whose text is a
// plain decimal integer from 1 to 60,000,000, and n is that integer.
func requireValidLimit(t *testing.T, raw []byte, n int) {
	t.Helper()
	require.True(t, json.Valid(raw), "accepted %q, which is not a JSON value", raw)
	text := trimJSONSpace(raw)
	require.NotEmpty(t, text)
	for _, c := range text {
		require.True(t, c >= '0' && c <= '9', "accepted %q, which holds %q", raw, c)
	}
	require.NotEqual(t, byte('0'), text[0], "accepted %q, which has a leading zero", raw)
	want, err := strconv.ParseInt(string(text), 10, 64)
	require.NoError(t, err)
	require.Equal(t, want, int64(n), "accepted %q as %d", raw, n)
	require.GreaterOrEqual(t, n, 1)
	require.LessOrEqual(t, n, 60_000_000)
	require.Equal(t, 60_000_000, maxPerMinute, "the documented maximum changed")
}

func FuzzLimitFromJSON(f *testing.F) {
	// The committed corpus in testdata/fuzz/FuzzLimitFromJSON holds the
	// seeds; these keep the target meaningful without it.
	for _, seed := range []string{`600`, `0`, `-5`, `6e2`, `"600"`, `null`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, ok, reason := parseLimit(raw)

		h := &countingHandler{}
		var bad badValues
		n2, ok2 := limitFromJSON(context.Background(), slog.New(h), &bad, "fuzz", "rate_limit_per_minute", "client", raw)
		require.Equal(t, n, n2, "limitFromJSON and parseLimit disagree on %q", raw)
		require.Equal(t, ok, ok2, "limitFromJSON and parseLimit disagree on %q", raw)
		wantWarns := int64(0)
		if reason != "" {
			wantWarns = 1
		}
		require.Equal(t, wantWarns, h.warns.Load(), "%q (reason %q): one WARN for an invalid value, none otherwise", raw, reason)

		text := trimJSONSpace(raw)
		quiet := len(text) == 0 || string(text) == "null" || string(text) == "0" || string(text) == "-0"
		if quiet {
			require.False(t, ok, "%q is no value", raw)
			require.Empty(t, reason, "%q is no value, not an invalid one", raw)
		}

		if !ok {
			require.Zero(t, n, "a refusal returns 0")
			if !quiet && json.Valid(raw) {
				require.NotEmpty(t, reason, "valid JSON %q refused without a reason", raw)
			}
			return
		}
		require.Empty(t, reason, "an accepted value has no reason")
		require.False(t, bytes.ContainsAny(raw, `.eE"-+`), "accepted %q", raw)
		requireValidLimit(t, raw, n)

		// A second lookup of the same invalid value is not logged again;
		// an accepted one never is.
		limitFromJSON(context.Background(), slog.New(h), &bad, "fuzz", "rate_limit_per_minute", "client", raw)
		require.Zero(t, h.warns.Load())
	})
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// fuzzTopMembers decodes body's top level with encoding/json, reporting a
// duplicate top-level name; ok is false when body is not a JSON object.
func fuzzTopMembers(t *testing.T, body []byte) (members map[string]json.RawMessage, dup, ok bool) {
	t.Helper()
	if json.Unmarshal(body, &members) != nil || members == nil {
		return nil, false, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	_, err := dec.Token() // '{'
	require.NoError(t, err)
	seen := make(map[string]bool)
	for dec.More() {
		name, err := dec.Token()
		require.NoError(t, err)
		dup = dup || seen[name.(string)]
		seen[name.(string)] = true
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return members, dup, true
}

func FuzzHydraClientAnswer(f *testing.F) {
	// The committed corpus in testdata/fuzz/FuzzHydraClientAnswer holds
	// the seeds; these keep the target meaningful without it.
	f.Add([]byte(`{"client_id":"C","metadata":{"rate_limit_per_minute":600}}`), "C")
	f.Add([]byte(`{"client_id":"D","metadata":{"rate_limit_per_minute":600}}`), "C")
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		// clientMetadata: the answer must describe the client asked for.
		metadata, err := clientMetadata(body, id)
		members, dup, isObject := fuzzTopMembers(t, body)
		if err == nil {
			require.True(t, isObject, "accepted %q, which is not a JSON object", body)
			require.False(t, dup, "accepted %q, which names a top-level member twice", body)
			var got string
			rawID, present := members["client_id"]
			require.True(t, present, "accepted an answer without client_id")
			require.Equal(t, byte('"'), rawID[0], "client_id is not a string: %s", rawID)
			require.NoError(t, json.Unmarshal(rawID, &got))
			require.Equal(t, id, got, "accepted the answer for another client")
			rawMeta, present := members["metadata"]
			if metadata == nil {
				require.True(t, !present || string(rawMeta) == "null", "metadata %s dropped", rawMeta)
			} else {
				require.Equal(t, string(rawMeta), string(metadata))
				require.Equal(t, byte('{'), metadata[0])
			}
		} else {
			require.Nil(t, metadata)
		}

		// The whole path through HydraSource.Lookup, with the answer served
		// by an in-memory transport.
		var requests atomic.Int64
		h := &countingHandler{}
		s, err := NewHydraSource(HydraConfig{
			AdminURL: "http://127.0.0.1:4445",
			HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				requests.Add(1)
				assert.Equal(t, "/admin/clients/"+url.PathEscape(id), r.URL.EscapedPath())
				return &http.Response{
					StatusCode: http.StatusOK,
					Header:     http.Header{"Content-Type": {"application/json"}},
					Body:       io.NopCloser(bytes.NewReader(body)),
					Request:    r,
				}, nil
			})},
			Logger: slog.New(h),
		})
		require.NoError(t, err)
		n, ok, lookupErr := s.Lookup(context.Background(), Client{ID: id})
		if id == "" || id == "." || id == ".." {
			require.Zero(t, requests.Load(), "a request for client ID %q", id)
			require.False(t, ok)
			require.NoError(t, lookupErr)
			return
		}
		require.Equal(t, int64(1), requests.Load())
		if _, cmErr := clientMetadata(body, id); cmErr != nil {
			require.Error(t, lookupErr, "a malformed answer is an error")
			require.False(t, ok)
			require.Zero(t, n)
			return
		}
		require.NoError(t, lookupErr)
		if !ok {
			require.Zero(t, n)
			return
		}
		// Accepted: the metadata object holds the limit under Field, as a
		// plain integer.
		var meta map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(metadata, &meta), "limit read from metadata %q", metadata)
		raw, present := meta[DefaultHydraField]
		require.True(t, present, "a limit with no %s in %s", DefaultHydraField, metadata)
		requireValidLimit(t, raw, n)
		require.False(t, strings.ContainsAny(string(raw), `.eE"-+`))
	})
}
