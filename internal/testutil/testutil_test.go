package testutil

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c := NewClock(start)
	assert.Equal(t, start, c.Now())
	c.Advance(90 * time.Second)
	assert.Equal(t, start.Add(90*time.Second), c.Now())
}

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { fmt.Fprintf(&b, "line %d level=WARN\n", i) })
	}
	wg.Wait()
	assert.Len(t, b.Lines("level=WARN"), 10)
	assert.Len(t, b.Lines("line 3"), 1)
	assert.Empty(t, b.Lines("absent"))
	assert.Contains(t, b.String(), "line 9")
}
