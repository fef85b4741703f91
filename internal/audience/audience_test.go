package audience

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestContains: RFC 8707 §2 names a resource by an absolute URI; by
// default aud must hold it exactly (RFC 9068 §4), and the opt-in canonical
// comparison forgives letter case in scheme and host and a trailing slash,
// nothing else.
func TestContains(t *testing.T) {
	const want = "https://api.example.com/v1"
	tests := []struct {
		name      string
		aud       []string
		exact     bool
		canonical bool
	}{
		{"identical", []string{want}, true, true},
		{"among others", []string{"https://other.example", want}, true, true},
		{"trailing slash", []string{want + "/"}, false, true},
		{"scheme in upper case", []string{"HTTPS://api.example.com/v1"}, false, true},
		{"host in mixed case", []string{"https://API.Example.com/v1"}, false, true},
		{"path in another case", []string{"https://api.example.com/V1"}, false, false},
		{"another path", []string{"https://api.example.com/v2"}, false, false},
		{"another port", []string{"https://api.example.com:8443/v1"}, false, false},
		{"http instead of https", []string{"http://api.example.com/v1"}, false, false},
		{"a query", []string{want + "?x=1"}, false, false},
		{"a fragment", []string{want + "#f"}, false, false},
		{"user info", []string{"https://u@api.example.com/v1"}, false, false},
		{"two trailing slashes", []string{want + "//"}, false, false},
		{"not a URL", []string{"api"}, false, false},
		{"a look-alike host (dotted capital I)", []string{"https://apİ.example.com/v1"}, false, false},
		{"a look-alike host (Kelvin sign)", []string{"https://\u212aapi.example.com/v1"}, false, false},
		{"empty", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.exact, Contains(tt.aud, want, false), "exact")
			assert.Equal(t, tt.canonical, Contains(tt.aud, want, true), "canonical")
		})
	}
	assert.True(t, Contains([]string{"https://api.example.com"}, "https://API.example.com/", true), "either side may be the odd one")
	assert.True(t, Contains([]string{"api"}, "api", true), "non-URLs compare exactly")
}
