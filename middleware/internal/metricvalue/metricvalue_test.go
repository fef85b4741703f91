package metricvalue

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/olympus/aegis/middleware"
)

func TestValues(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		got, want string
	}{
		{Kind(""), "none"},
		{Kind(middleware.KindUser), "user"},
		{RateLimitResult(middleware.RateLimitDecision{Allowed: true}), "allowed"},
		{RateLimitResult(middleware.RateLimitDecision{}), "denied"},
		{RateLimitResult(middleware.RateLimitDecision{Allowed: true, Err: boom}), "error"},
		{CallResult(middleware.IntrospectionCall{Active: true}), "active"},
		{CallResult(middleware.IntrospectionCall{}), "inactive"},
		{CallResult(middleware.IntrospectionCall{Err: boom}), "error"},
		{LookupResult(middleware.LimitLookup{Found: true}), "found"},
		{LookupResult(middleware.LimitLookup{}), "default"},
		{LookupResult(middleware.LimitLookup{Found: true, Err: boom}), "error"},
		{Clip("sync", 4), "sync"},
		{Clip(strings.Repeat("a", 5), 4), "aaaa"},
		{Clip("aaaé", 4), "aaa"}, // é would end at byte 5
		{Clip("ab\xffcd", 10), "ab\uFFFDcd"},
	}
	for i, tt := range tests {
		assert.Equal(t, tt.want, tt.got, "row %d", i)
	}
}
