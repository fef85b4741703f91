// Package refusal builds the refusals of Aegis's leaf packages: an
// *aegis.Refusal whose cause is the package's own sentinel error with a
// short detail, in one allocation.
package refusal

import (
	"strconv"
	"strings"

	"github.com/olympus/aegis"
)

// With returns the refusal for reason, caused by sentinel (still found by
// errors.Is) with detail, Aegis's own words.
func With(reason aegis.Reason, sentinel error, detail string) *aegis.Refusal {
	r := &detailed{detail: detailError{sentinel: sentinel, detail: detail}}
	r.Refusal = *aegis.Refuse(reason, nil)
	r.Refusal.Err = &r.detail
	return &r.Refusal
}

// detailed holds a refusal and its cause together.
type detailed struct {
	aegis.Refusal
	detail detailError
}

// detailError is a sentinel with a detail.
type detailError struct {
	sentinel error
	detail   string
}

func (e *detailError) Error() string { return e.sentinel.Error() + ": " + e.detail }
func (e *detailError) Unwrap() error { return e.sentinel }

// maxShown bounds how much of a token's claim a detail shows.
const (
	maxShownBytes  = 128
	maxShownValues = 4
)

// Mismatch is the detail of a refusal of a claim that lacks the configured
// value: "iss "https://a.example/" is not the configured "https://a.example"".
// Both are public identifiers, never a token; the token's values, which an
// attacker chooses, are quoted, clipped and at most a few.
func Mismatch(claim string, seen []string, configured string) string {
	var b strings.Builder
	b.WriteString(claim)
	b.WriteByte(' ')
	switch len(seen) {
	case 0:
		b.WriteString("(absent)")
	case 1:
		b.WriteString(strconv.Quote(clip(seen[0])))
	default:
		b.WriteByte('[')
		for i, s := range seen {
			if i == maxShownValues {
				b.WriteString(", …")
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(clip(s)))
		}
		b.WriteByte(']')
	}
	b.WriteString(" is not the configured ")
	b.WriteString(strconv.Quote(configured))
	return b.String()
}

func clip(s string) string {
	if len(s) > maxShownBytes {
		return s[:maxShownBytes] + "…"
	}
	return s
}
