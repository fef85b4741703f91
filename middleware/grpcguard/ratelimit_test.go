package grpcguard_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/olympus/aegis/internal/redistest"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/grpcguard"
	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/ratelimit/redisstore"
)

// assertRetry checks a refusal that the caller should retry: its code,
// ErrorInfo reason, a RetryInfo delay within (0, most], and no challenge.
func assertRetry(t *testing.T, res result, code codes.Code, reason string, most time.Duration) {
	t.Helper()
	require.Error(t, res.Err)
	st := status.Convert(res.Err)
	assert.Equal(t, code, st.Code())
	info, retry := details(t, st)
	require.NotNil(t, info)
	assert.Equal(t, reason, info.GetReason())
	require.NotNil(t, retry, "RetryInfo")
	delay := retry.GetRetryDelay().AsDuration()
	assert.Positive(t, delay)
	assert.LessOrEqual(t, delay, most)
	assert.Zero(t, delay%time.Second, "whole seconds, as Retry-After")
	assert.Empty(t, challengeOf(t, res.Trailer), "the token is not the problem: no challenge")
}

func TestRateLimited(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	token := "Bearer " + iss.M2M("nightly-sync", "data:read", "data:stream")
	for _, tr := range transports {
		for _, k := range kinds {
			t.Run(string(tr)+"/"+string(k), func(t *testing.T) {
				obs := newDecisions()
				g, err := grpcguard.New(grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods(), Observer: obs,
					RateLimit: &core.RateLimitConfig{Limits: ratelimit.Static{"nightly-sync": 2}}})
				require.NoError(t, err)
				c := serve(t, tr, g)
				for i := range 2 {
					res := call(t, c, k, token)
					require.NoError(t, res.Err)
					assert.Equal(t, []string{strconv.Itoa(1 - i)}, res.Header.Get("x-ratelimit-remaining"))
					assert.Equal(t, []string{"2"}, res.Header.Get("x-ratelimit-limit"))
					assert.Equal(t, []string{`"client";q=2;w=60`}, res.Header.Get("ratelimit-policy"))
					assert.Equal(t, core.OutcomeAccepted, obs.next(t).Outcome)
				}
				res := call(t, c, k, token)
				assertRetry(t, res, codes.ResourceExhausted, "RATE_LIMITED", 30*time.Second)
				assert.Equal(t, []string{"0"}, res.Header.Get("x-ratelimit-remaining"), "rate-limit metadata on refusals too")
				assert.Len(t, res.Header.Get("ratelimit"), 1)
				dec := obs.next(t)
				assert.Equal(t, "rate_limited", string(dec.Reason))
				assert.Equal(t, "nightly-sync", dec.ClientID)

				// A forged token never spends the client's quota, and is
				// refused as invalid, not limited.
				assert.Equal(t, codes.Unauthenticated, status.Code(call(t, c, k, "Bearer "+forged(iss)).Err))
			})
		}
	}
}

func TestKeysUnavailable(t *testing.T) {
	for _, tr := range transports {
		for _, k := range kinds {
			t.Run(string(tr)+"/"+string(k), func(t *testing.T) {
				iss := jwkstest.NewIssuer(t, jwkstest.Config{})
				iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
				obs := newDecisions()
				g, err := grpcguard.New(grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods(), Observer: obs})
				require.NoError(t, err)
				res := call(t, serve(t, tr, g), k, "Bearer "+iss.M2M("nightly-sync", "data:read"))
				assertRetry(t, res, codes.Unavailable, "KEYS_UNAVAILABLE", 10*time.Second)
				retry := func() time.Duration {
					_, r := details(t, status.Convert(res.Err))
					return r.GetRetryDelay().AsDuration()
				}
				assert.Equal(t, 10*time.Second, retry())
				assert.Equal(t, "keys_unavailable", string(obs.next(t).Reason))
			})
		}
	}
}

// Two servers (replicas) whose Guards share a Redis rate-limit store: the
// client's limit holds across them, for unary and streaming calls alike.
func TestRateLimitSharedThroughRedis(t *testing.T) {
	newClient := redistest.Shared(t)
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	token := "Bearer " + iss.M2M("nightly-sync", "data:read")
	prefix := "aegis-test:" + t.Name() + ":" + time.Now().Format("150405.000000000") + ":"
	var replicas []testgrpc.TestServiceClient
	for _, tr := range transports {
		store, err := redisstore.New(redisstore.Config{Client: newClient(), Prefix: prefix, Timeout: 10 * time.Second})
		require.NoError(t, err)
		g, err := grpcguard.New(grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods(),
			RateLimit: &core.RateLimitConfig{Store: store, Limits: ratelimit.Static{"nightly-sync": 4}}})
		require.NoError(t, err)
		replicas = append(replicas, serve(t, tr, g))
	}
	calls := []struct {
		replica   int
		kind      kind
		remaining string
	}{
		{0, unary, "3"}, {1, stream, "2"}, {1, unary, "1"}, {0, stream, "0"},
	}
	for _, c := range calls {
		res := call(t, replicas[c.replica], c.kind, token)
		require.NoError(t, res.Err, "call %+v", c)
		assert.Equal(t, []string{c.remaining}, res.Header.Get("x-ratelimit-remaining"), "call %+v", c)
	}
	for _, r := range replicas {
		for _, k := range kinds {
			assertRetry(t, call(t, r, k, token), codes.ResourceExhausted, "RATE_LIMITED", 15*time.Second)
		}
	}
}
