// Package refusal builds the refusals of Aegis's leaf packages: an
// *aegis.Refusal whose cause is the package's own sentinel error with a
// short detail, in one allocation.
package refusal

import "github.com/olympus/aegis"

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
