package middleware

import (
	"net/http"
	"strconv"
	"time"

	"github.com/olympus/aegis/ratelimit"
)

// setRateLimitHeaders writes the IETF httpapi draft's structured fields
// (RateLimit-Policy, RateLimit) and the customary X-RateLimit-* headers.
// Reset times are delta seconds, rounded up.
func setRateLimitHeaders(h http.Header, d ratelimit.Decision) {
	q := strconv.Itoa(d.Limit.PerMinute)
	remaining := strconv.Itoa(d.Remaining)
	reset := strconv.FormatInt(ceilSeconds(d.Reset), 10)
	h.Set("RateLimit-Policy", `"client";q=`+q+`;w=60`)
	h.Set("RateLimit", `"client";r=`+remaining+`;t=`+reset)
	h.Set("X-RateLimit-Limit", q)
	h.Set("X-RateLimit-Remaining", remaining)
	h.Set("X-RateLimit-Reset", reset)
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
