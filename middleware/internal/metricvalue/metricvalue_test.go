package metricvalue

import (
	"errors"
	"strings"
	"testing"

	"github.com/olympus/aegis"

	"github.com/olympus/aegis/middleware/core"

	"github.com/stretchr/testify/assert"
)

func TestValues(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		got, want string
	}{
		{Kind(""), "none"},
		{Kind(core.KindUser), "user"},
		{RateLimitResult(core.RateLimitDecision{Allowed: true}), "allowed"},
		{RateLimitResult(core.RateLimitDecision{}), "denied"},
		{RateLimitResult(core.RateLimitDecision{Allowed: true, Err: boom}), "error"},
		{CallResult(core.IntrospectionCall{Active: true}), "active"},
		{CallResult(core.IntrospectionCall{}), "inactive"},
		{CallResult(core.IntrospectionCall{Err: boom}), "error"},
		{SharedCacheResult(core.IntrospectionSharedCache{Op: aegis.SharedCacheGet, Hit: true}), "hit"},
		{SharedCacheResult(core.IntrospectionSharedCache{Op: aegis.SharedCacheGet}), "miss"},
		{SharedCacheResult(core.IntrospectionSharedCache{Op: aegis.SharedCacheSet}), "ok"},
		{SharedCacheResult(core.IntrospectionSharedCache{Op: aegis.SharedCacheDrop, Err: boom}), "error"},
		{LookupResult(core.LimitLookup{Found: true}), "found"},
		{LookupResult(core.LimitLookup{}), "default"},
		{LookupResult(core.LimitLookup{Found: true, Err: boom}), "error"},
		{Clip("sync", 4), "sync"},
		{Clip(strings.Repeat("a", 5), 4), "aaaa"},
		{Clip("aaaé", 4), "aaa"}, // é would end at byte 5
		{Clip("ab\xffcd", 10), "ab\uFFFDcd"},
	}
	for i, tt := range tests {
		assert.Equal(t, tt.want, tt.got, "row %d", i)
	}
}
