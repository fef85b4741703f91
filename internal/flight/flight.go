// Package flight is the one guard Aegis's shared fetches go through: one
// call per key for all concurrent callers (golang.org/x/sync/singleflight),
// detached from any one caller's cancellation, with a panic turned into an
// error instead of being re-raised on a goroutine no server can recover.
package flight

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/singleflight"
)

// ErrPanicked is wrapped by the error of a call that panicked.
var ErrPanicked = errors.New("panicked")

// Group runs calls returning a T. The zero value is ready to use.
type Group[T any] struct{ g singleflight.Group }

// Do runs fn once for all concurrent callers with the same key and gives
// each its result. fn gets ctx without its cancellation (it works for every
// caller); each caller stops waiting when its own ctx ends, with ctx's
// error. A panic in fn is returned as an error wrapping ErrPanicked.
func (g *Group[T]) Do(ctx context.Context, key string, fn func(ctx context.Context) (T, error)) (T, error) {
	detached := context.WithoutCancel(ctx)
	ch := g.g.DoChan(key, func() (v any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w: %v", ErrPanicked, p)
			}
		}()
		return fn(detached)
	})
	var zero T
	select {
	case res := <-ch:
		if res.Err != nil {
			return zero, res.Err
		}
		v, _ := res.Val.(T)
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
