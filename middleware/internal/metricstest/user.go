package metricstest

import (
	"context"

	"github.com/olympus/aegis"
)

// UserObserver is a user's own jwks.Observer and introspect.Observer made
// of a Start and a Done function: Start gets "user.fetch" or "user.call",
// Done the context of the event.
type UserObserver struct {
	Start func(name string) func(context.Context) context.Context
	Done  func(context.Context)
}

// KeySetFetchStart runs Start("user.fetch").
func (u UserObserver) KeySetFetchStart(ctx context.Context, _ string) context.Context {
	return u.Start("user.fetch")(ctx)
}

// KeySetFetch runs Done.
func (u UserObserver) KeySetFetch(ctx context.Context, _ aegis.KeySetFetch) { u.Done(ctx) }

// IntrospectionCache does nothing.
func (u UserObserver) IntrospectionCache(context.Context, aegis.IntrospectionCacheLookup) {}

// IntrospectionCallStart runs Start("user.call").
func (u UserObserver) IntrospectionCallStart(ctx context.Context, _ string) context.Context {
	return u.Start("user.call")(ctx)
}

// IntrospectionCall runs Done.
func (u UserObserver) IntrospectionCall(ctx context.Context, _ aegis.IntrospectionCall) { u.Done(ctx) }

// IntrospectionSharedCache does nothing.
func (u UserObserver) IntrospectionSharedCache(context.Context, aegis.IntrospectionSharedCache) {}
