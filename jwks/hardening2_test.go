package jwks_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/olympus/aegis"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// TestHardening2_LineBreaksInJWTRefused (issue 13, point 2): encoding/base64
// skips \r and \n even in strict mode, so a genuine token with line breaks
// in any part used to verify. Every byte outside the base64url alphabet and
// the two dots is now refused before decoding, in every part.
func TestHardening2_LineBreaksInJWTRefused(t *testing.T) {
	f := newFixture(t, "RS256", nil)
	token := f.iss.Sign(f.iss.Claims("worker", "worker", "data:read"))
	_, err := f.validator.Validate(context.Background(), token)
	require.NoError(t, err, "the genuine token itself is accepted")
	parts := strings.Split(token, ".")
	spell := func(part int, at int, insert string) string {
		p := append([]string(nil), parts...)
		p[part] = p[part][:at] + insert + p[part][at:]
		return strings.Join(p, ".")
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"LF in the signature", spell(2, 4, "\n"), jwks.ErrMalformed},
		{"CR in the signature", spell(2, 4, "\r"), jwks.ErrMalformed},
		{"CRLF at the end of the signature", token + "\r\n", jwks.ErrMalformed},
		{"2,000 LFs in the signature", spell(2, 4, strings.Repeat("\n", 2000)), jwks.ErrMalformed},
		{"LF in the payload", spell(1, 4, "\n"), jwks.ErrMalformed},
		{"CRLF in the payload", spell(1, 8, "\r\n"), jwks.ErrMalformed},
		{"LF in the header", spell(0, 4, "\n"), jwks.ErrNotJWT},
		{"CR at the start of the header", "\r" + token, jwks.ErrNotJWT},
		{"space in the signature", spell(2, 4, " "), jwks.ErrMalformed},
		{"NUL in the signature", spell(2, 4, "\x00"), jwks.ErrMalformed},
		{"standard base64 '+' in the signature", spell(2, 4, "+"), jwks.ErrMalformed},
		{"non-ASCII byte in the payload", spell(1, 4, "\xc3\xa9"), jwks.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jwks.ParseToken(tt.token, 0)
			assert.ErrorIs(t, err, tt.want, "ParseToken")
			_, err = f.validator.Validate(context.Background(), tt.token)
			assert.ErrorIs(t, err, tt.want, "Validate")
		})
	}
}

// TestHardening2_JWKMemberNamesReadExactly (issue 13, point 5): encoding/json
// matches member names case-insensitively, so {"use":"enc","USE":"sig"} and
// {"key_ops":["encrypt"],"KEY_OPS":["verify"]} used to pass the key filter,
// and Aegis and jwx could read one JWK as two different keys. Members are
// now read by their exact names, and a member whose name is a case variant
// of a registered JWK parameter leaves the key out as malformed.
func TestHardening2_JWKMemberNamesReadExactly(t *testing.T) {
	good := jwkstest.NewKey("RS256")
	// spliced is k's JWK without the named members, with members written
	// first, as is and in this order.
	spliced := func(k *jwkstest.Key, drop []string, members string) json.RawMessage {
		set := map[string]any{}
		for _, name := range drop {
			set[name] = nil
		}
		raw := jwkWith(t, k, set)
		return json.RawMessage(`{` + members + `,` + string(raw[1:]))
	}
	tests := []struct {
		name   string
		jwk    func(k *jwkstest.Key) json.RawMessage
		keep   bool   // the key stays in the set
		alg    string // its Algorithm when kept
		reason string // part of the rejection reason otherwise
	}{
		{name: "use enc, then USE sig", reason: `"USE" differs from "use" only in case`,
			jwk: func(k *jwkstest.Key) json.RawMessage { return spliced(k, []string{"use"}, `"use":"enc","USE":"sig"`) }},
		{name: "USE sig, then use enc", reason: `"USE" differs from "use" only in case`,
			jwk: func(k *jwkstest.Key) json.RawMessage { return spliced(k, []string{"use"}, `"USE":"sig","use":"enc"`) }},
		{name: "key_ops encrypt, then KEY_OPS verify", reason: `"KEY_OPS" differs from "key_ops" only in case`,
			jwk: func(k *jwkstest.Key) json.RawMessage {
				return spliced(k, []string{"use"}, `"key_ops":["encrypt"],"KEY_OPS":["verify"]`)
			}},
		{name: "Use alone", reason: `"Use" differs from "use" only in case`,
			jwk: func(k *jwkstest.Key) json.RawMessage { return spliced(k, []string{"use"}, `"Use":"enc"`) }},
		{name: "alg RS256, then ALG PS256", reason: `"ALG" differs from "alg" only in case`,
			jwk: func(k *jwkstest.Key) json.RawMessage {
				return spliced(k, []string{"alg"}, `"alg":"RS256","ALG":"PS256"`)
			}},
		{name: "kid, then KID", reason: `"KID" differs from "kid" only in case`,
			jwk: func(k *jwkstest.Key) json.RawMessage { return spliced(k, nil, `"KID":"other"`) }},
		{name: "Kty beside kty", reason: `"Kty" differs from "kty" only in case`,
			jwk: func(k *jwkstest.Key) json.RawMessage { return spliced(k, nil, `"Kty":"oct"`) }},
		{name: "D beside the public parameters", reason: `"D" differs from "d" only in case`,
			jwk: func(k *jwkstest.Key) json.RawMessage { return spliced(k, nil, `"D":"AQAB"`) }},
		{name: "N beside n", reason: `"N" differs from "n" only in case`,
			jwk: func(k *jwkstest.Key) json.RawMessage { return spliced(k, nil, `"N":"AQAB"`) }},
		{name: "an unregistered member in two cases is nobody's to read", keep: true, alg: jwks.RS256,
			jwk: func(k *jwkstest.Key) json.RawMessage { return spliced(k, nil, `"Custom":1,"custom":2`) }},
		{name: "exact names only", keep: true, alg: jwks.RS256,
			jwk: func(k *jwkstest.Key) json.RawMessage { return k.JWK() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := jwkstest.NewKey("RS256")
			doc, err := json.Marshal(map[string]any{"keys": []json.RawMessage{tc.jwk(k), good.JWK()}})
			require.NoError(t, err)
			set, rejected, err := jwks.ParseSet(doc)
			require.NoError(t, err)
			assert.NotEmpty(t, set.Lookup(good.ID), "the other key is kept")
			if tc.keep {
				require.Len(t, set.Lookup(k.ID), 1)
				assert.Equal(t, tc.alg, set.Lookup(k.ID)[0].Algorithm)
				assert.Empty(t, rejected)
				return
			}
			assert.Empty(t, set.Lookup(k.ID), "the key is left out")
			assert.Equal(t, 1, set.Len())
			require.Len(t, rejected, 1)
			assert.Contains(t, rejected[0].Reason, tc.reason)
		})
	}
}

// TestHardening2_NumericDateBeyondAnyRealDateRefused (issue 13, point 9):
// exp 1e300 used to be clamped to 9999 and accepted as never expiring. A
// NumericDate that is not finite or falls outside the years 1 to 9999 is
// now an invalid claim, in exp, nbf and iat alike.
func TestHardening2_NumericDateBeyondAnyRealDateRefused(t *testing.T) {
	f := newFixture(t, "RS256", nil)
	tests := []struct {
		claim, raw string
		want       error // nil: accepted
	}{
		{"exp", `1e300`, jwks.ErrClaims},
		{"exp", `1e309`, jwks.ErrClaims},
		{"exp", `253402300800`, jwks.ErrClaims}, // 10000-01-01
		{"exp", `999999999999999`, jwks.ErrClaims},
		{"exp", `-1e309`, jwks.ErrClaims},
		{"exp", `-62135596801`, jwks.ErrClaims}, // year 0
		{"nbf", `1e309`, jwks.ErrClaims},
		{"nbf", `-1e300`, jwks.ErrClaims},
		{"iat", `-1e309`, jwks.ErrClaims},
		{"iat", `1e300`, jwks.ErrClaims},
		{"exp", `253402300799`, nil}, // the last second of 9999 is a real date
		{"nbf", `-62135596800`, nil}, // and so is the first of year 1
	}
	for _, tt := range tests {
		t.Run(tt.claim+" "+tt.raw, func(t *testing.T) {
			c := f.iss.Claims("worker", "worker", "data:read")
			c[tt.claim] = json.RawMessage(tt.raw)
			_, err := f.validator.Validate(context.Background(), f.iss.Sign(c))
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

// TestHardening2_MaxLifetime (issue 13, point 9): ValidatorConfig.MaxLifetime
// refuses a token whose exp is further than it from iat, or from now when
// the token has no iat (leeway allowed there); zero sets no bound.
func TestHardening2_MaxLifetime(t *testing.T) {
	num := func(d time.Duration) json.RawMessage { return json.RawMessage(strconv.FormatInt(t0.Add(d).Unix(), 10)) }
	tests := []struct {
		name        string
		maxLifetime time.Duration
		iat, exp    json.RawMessage // iat nil: none
		want        error
	}{
		{"off: a token living a year", 0, num(0), num(365 * 24 * time.Hour), nil},
		{"off: exp 9999 without iat", 0, nil, json.RawMessage(`253402300799`), nil},
		{"exp - iat within the bound", time.Hour, num(0), num(time.Hour), nil},
		{"exp - iat over the bound", time.Hour, num(0), num(time.Hour + time.Second), jwks.ErrClaims},
		{"exp - iat over the bound although exp - now is within", time.Hour, num(-time.Hour), num(time.Minute), jwks.ErrClaims},
		{"exp 9999 with an iat", 24 * time.Hour, num(0), json.RawMessage(`253402300799`), jwks.ErrClaims},
		{"no iat: exp - now within the bound", time.Hour, nil, num(time.Hour), nil},
		{"no iat: exp - now within the bound and the leeway", time.Hour, nil, num(time.Hour + 30*time.Second), nil},
		{"no iat: exp - now over the bound and the leeway", time.Hour, nil, num(time.Hour + aegis.DefaultLeeway + time.Second), jwks.ErrClaims},
		{"no iat: exp 9999", 24 * time.Hour, nil, json.RawMessage(`253402300799`), jwks.ErrClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "RS256", func(c *jwks.ValidatorConfig) { c.MaxLifetime = tt.maxLifetime })
			c := f.iss.Claims("worker", "worker", "data:read")
			delete(c, "iat")
			if tt.iat != nil {
				c["iat"] = tt.iat
			}
			c["exp"] = tt.exp
			_, err := f.validator.Validate(context.Background(), f.iss.Sign(c))
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.want)
		})
	}
	_, err := jwks.NewValidator(jwks.ValidatorConfig{Issuer: "https://i.test", Audience: "a", Keys: &jwks.Set{}, MaxLifetime: -time.Second})
	assert.Error(t, err, "a negative MaxLifetime is a configuration error")
}

// TestHardening2_CredentialsInURLsRedacted (issue 13, point 6): a password
// in the key set URL's user info, or a secret in its query, used to appear
// in the fetch-failure log line, in the refusal's cause and in the error
// text. Every URL Aegis logs, wraps into an error or hands to a hook now
// goes through issuerhttp.Redact.
func TestHardening2_CredentialsInURLsRedacted(t *testing.T) {
	secrets := []string{"S3cret", "Q5ecret", "Z9sig", "svc"}
	closed := httptest.NewServer(http.NotFoundHandler())
	closedHost := closed.Listener.Addr().String()
	closed.Close()
	tests := []struct {
		name     string
		url      func(host string) string
		down     bool   // the server is unreachable (a transport error)
		redacted string // what the hook sees, {host} replaced
	}{
		{"password in the user info", func(h string) string { return "http://svc:S3cret@" + h + "/jwks" }, false, "http://xxxxx@{host}/jwks"},
		{"secrets in the query", func(h string) string { return "http://" + h + "/jwks?api_key=Q5ecret&sig=Z9sig" }, false, "http://{host}/jwks?api_key=xxxxx&sig=xxxxx"},
		{"both, server unreachable", func(h string) string { return "http://svc:S3cret@" + h + "/jwks?api_key=Q5ecret" }, true, "http://xxxxx@{host}/jwks?api_key=xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := closedHost
			if !tt.down {
				srv := newKeyServer(t)
				srv.set(func(s *keyServer) { s.status = http.StatusServiceUnavailable })
				host = srv.Listener.Addr().String()
			}
			logs := &testutil.Buffer{}
			rec := &fetchRecorder{}
			remote := newRemote(t, jwks.Config{URL: tt.url(host), Now: newClock().Now, Observer: rec,
				Logger: slog.New(slog.NewTextHandler(logs, nil))})
			v, err := jwks.NewValidator(jwks.ValidatorConfig{Issuer: "https://issuer.test", Audience: "a", Keys: remote, Now: fixedClock})
			require.NoError(t, err)
			k := jwkstest.NewKey("RS256")
			token := jwkstest.SignRaw(k, []byte(`{"alg":"RS256","kid":"`+k.ID+`"}`),
				[]byte(`{"iss":"https://issuer.test","aud":"a","sub":"w","client_id":"w","exp":`+strconv.FormatInt(t0.Unix()+60, 10)+`}`))
			_, err = v.Validate(context.Background(), token)
			require.ErrorIs(t, err, jwks.ErrKeysUnavailable)
			var refusal *aegis.Refusal
			require.ErrorAs(t, err, &refusal)
			require.Error(t, refusal.Err)
			rec.mu.Lock()
			require.Len(t, rec.fetches, 1)
			fetch := rec.fetches[0]
			rec.mu.Unlock()
			require.NotEmpty(t, logs.String(), "the failure is logged")
			want := strings.ReplaceAll(tt.redacted, "{host}", host)
			assert.Equal(t, want, fetch.URL, "the hook's URL")
			assert.Contains(t, logs.String(), want, "the log names the redacted URL")
			for _, secret := range secrets {
				assert.NotContains(t, logs.String(), secret, "log output")
				assert.NotContains(t, err.Error(), secret, "error text")
				assert.NotContains(t, refusal.Err.Error(), secret, "refusal's cause")
				assert.NotContains(t, fetch.Err.Error(), secret, "the hook's error")
				assert.NotContains(t, fetch.URL, secret, "the hook's URL")
			}
		})
	}
}

// TestHardening2_EveryByteOutsideTheAlphabetRefused: ParseToken looks for
// \r and \n itself and leaves every other byte outside the base64url
// alphabet to the strict decoder; this checks that the decoder refuses
// each of them, in each part, so that no token has a second spelling.
func TestHardening2_EveryByteOutsideTheAlphabetRefused(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: "ES256"})
	token := iss.M2M("worker")
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	inAlphabet := func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	for c := range 256 {
		b := byte(c)
		if inAlphabet(b) || b == '.' {
			continue
		}
		for p := range parts {
			spelled := slices.Clone(parts)
			spelled[p] = spelled[p][:4] + string([]byte{b}) + spelled[p][4:]
			_, err := jwks.ParseToken(strings.Join(spelled, "."), 0)
			assert.ErrorIs(t, err, jwks.ErrMalformed, "byte %#x in part %d", b, p)
		}
	}
}

// TestHardening2_UnknownKidFloodDoesNotLockOutRotation (issue 13, point
// 10): the refetch cooldown was shared, so right after a made-up kid caused
// a refetch, a key published since was refused for up to the cooldown
// (10 s). Now a flood of 100 made-up kids a second costs one fetch per
// cooldown, a key published mid-flood is found for the second request that
// names it (the requests naming it wait for that fetch instead of failing),
// and a client stuck on a wrong kid costs one fetch.
func TestHardening2_UnknownKidFloodDoesNotLockOutRotation(t *testing.T) {
	old, rotated, rotatedAgain := jwkstest.NewKey("ES256"), jwkstest.NewKey("ES256"), jwkstest.NewKey("ES256")
	srv := newKeyServer(t, old)
	clk := newClock()
	r := newRemote(t, jwks.Config{URL: srv.URL, Now: clk.Now}) // the default cooldown, 10 s
	ctx := context.Background()
	require.NoError(t, r.Refresh(ctx))
	lookup := func(kid string) int {
		keys, err := r.LookupKeys(ctx, kid)
		require.NoError(t, err)
		return len(keys)
	}
	publish := func(k *jwkstest.Key) { srv.set(func(s *keyServer) { s.keys = append(s.keys, k) }) }

	// 55 s of 100 made-up kids a second: a fetch at once, then one per
	// cooldown (at 10 s, 20 s, … 50 s).
	for i := range 5500 {
		clk.Advance(10 * time.Millisecond)
		require.Zero(t, lookup("made-up-"+strconv.Itoa(i)))
	}
	assert.Equal(t, int64(1+6), srv.fetches.Load(), "the flood costs one fetch per cooldown")

	steps := []struct {
		name       string
		advance    time.Duration
		publish    *jwkstest.Key
		kid        string
		times      int // concurrent lookups
		wantKeys   int // keys each finds
		newFetches int64
	}{
		{name: "a key published mid-flood: its first request is refused at once", advance: 10 * time.Millisecond, publish: rotated, kid: rotated.ID, times: 1},
		{name: "its second request causes a priority fetch and is accepted", advance: 10 * time.Millisecond, kid: rotated.ID, times: 1, wantKeys: 1, newFetches: 1},
		{name: "a wrong kid named once", advance: time.Second, kid: "stuck", times: 1},
		{name: "a wrong kid named again: one priority fetch", advance: 10 * time.Millisecond, kid: "stuck", times: 1, newFetches: 1},
		{name: "a wrong kid a fetch looked for: refused at once", advance: 10 * time.Millisecond, kid: "stuck", times: 50},
		{name: "another key published: its first request is refused", advance: 10 * time.Millisecond, publish: rotatedAgain, kid: rotatedAgain.ID, times: 1},
		// Under a second after the last priority fetch: they wait for the
		// next, due when the second has passed.
		{name: "its concurrent requests wait for the next priority fetch", advance: 10 * time.Millisecond, kid: rotatedAgain.ID, times: 20, wantKeys: 1, newFetches: 1},
		{name: "after the cooldown, a made-up kid causes a fetch at once", advance: 10 * time.Second, kid: "made-up-again", times: 1, newFetches: 1},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.Advance(st.advance)
			if st.publish != nil {
				publish(st.publish)
			}
			before := srv.fetches.Load()
			found := make(chan int, st.times)
			var wg sync.WaitGroup
			for range st.times {
				wg.Go(func() {
					keys, err := r.LookupKeys(ctx, st.kid)
					assert.NoError(t, err)
					found <- len(keys)
				})
			}
			wg.Wait()
			close(found)
			for n := range found {
				assert.Equal(t, st.wantKeys, n)
			}
			assert.Equal(t, st.newFetches, srv.fetches.Load()-before, "fetches")
		})
	}
}

// TestHardening2_UnknownKidFloodCannotSaturate (issue 13, point 10, review
// finding): 21,000 made-up kids between two fetches overload the Bloom filter
// that remembers which kids a fetch looked for; a full filter would answer
// "looked for" for almost any kid, so a key published next would wait for
// the cooldown. Past its designed load the filter's "looked for" is not
// trusted, and the new key's second request still gets a priority fetch.
func TestHardening2_UnknownKidFloodCannotSaturate(t *testing.T) {
	old, rotated := jwkstest.NewKey("ES256"), jwkstest.NewKey("ES256")
	srv := newKeyServer(t, old)
	clk := newClock()
	r := newRemote(t, jwks.Config{URL: srv.URL, Now: clk.Now})
	ctx := context.Background()
	require.NoError(t, r.Refresh(ctx))
	_, err := r.LookupKeys(ctx, "first-made-up") // the cooldown starts
	require.NoError(t, err)
	// (A false positive of the filter of kids named makes a made-up kid
	// look named twice: it then waits, in real time, for a priority fetch
	// due a second later on the frozen clock. A few do; that is the
	// documented cost of a flood.)
	for i := range 21_000 {
		keys, err := r.LookupKeys(ctx, "made-up-"+strconv.Itoa(i))
		require.NoError(t, err)
		require.Empty(t, keys)
	}
	clk.Advance(10 * time.Second) // the next made-up kid causes a cooldown fetch, which looks for all of them
	_, err = r.LookupKeys(ctx, "made-up-after-the-cooldown")
	require.NoError(t, err)
	fetches := srv.fetches.Load()

	clk.Advance(2 * time.Second)
	srv.set(func(s *keyServer) { s.keys = append(s.keys, rotated) })
	keys, err := r.LookupKeys(ctx, rotated.ID)
	require.NoError(t, err)
	assert.Empty(t, keys, "its first request, within the cooldown, is refused at once")
	keys, err = r.LookupKeys(ctx, rotated.ID)
	require.NoError(t, err)
	assert.Len(t, keys, 1, "its second request gets a priority fetch")
	assert.Equal(t, fetches+1, srv.fetches.Load())
}
