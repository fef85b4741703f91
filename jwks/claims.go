package jwks

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/olympus/aegis/internal/strictjson"
)

// Claims are the verified contents of a JWT access token: the header values
// that mattered, the registered claims Aegis checked, and every claim as sent.
// Its strings and raw values share one buffer with the decoded token, so
// none of them may be modified; copy what you keep for long (a map key,
// say) if the rest of the token need not stay in memory with it.
type Claims struct {
	// KeyID, Algorithm and Type are the header's kid, alg and typ.
	KeyID, Algorithm, Type string
	// Key is the key that verified the signature. A cache of verified
	// tokens keeps it, to serve a token only while its key set still Holds
	// that very key.
	Key Key

	Issuer   string   // iss
	Subject  string   // sub
	ClientID string   // client_id (RFC 9068 §2.2), empty when absent
	TokenID  string   // jti, empty when absent
	Audience []string // aud, in array form

	Expiry    time.Time // exp
	NotBefore time.Time // nbf, zero when absent
	IssuedAt  time.Time // iat, zero when absent

	raw []strictjson.Member
	// idTokenClaim names a claim only OpenID Connect ID tokens carry.
	idTokenClaim string
}

// Raw returns the JSON value of a top-level claim as sent. It shares the
// token's buffer and must not be modified; its capacity is its length, so
// an append copies.
func (c *Claims) Raw(name string) (json.RawMessage, bool) {
	for _, m := range c.raw {
		if m.Name == name {
			return json.RawMessage(m.Value[:len(m.Value):len(m.Value)]), true
		}
	}
	return nil, false
}

// Names lists the top-level claims in the order sent.
func (c *Claims) Names() []string {
	names := make([]string, len(c.raw))
	for i, m := range c.raw {
		names[i] = m.Name
	}
	return names
}

// parseClaims reads payload into c, its members appended to room and its
// audience to audRoom. The strings of c share payload's memory, which must
// never change afterwards.
func parseClaims(c *Claims, room []strictjson.Member, audRoom []string, payload []byte) error {
	members, err := strictjson.AppendObject(room, payload, strictjson.MaxClaimsDepth)
	if err != nil {
		return refuse(ErrMalformed, "claims are not a strict JSON object")
	}
	c.raw = members
	for _, m := range members {
		var err error
		switch m.Name {
		case "iss":
			c.Issuer, err = strictjson.StringView(m.Value)
		case "sub":
			c.Subject, err = strictjson.StringView(m.Value)
		case "client_id":
			c.ClientID, err = strictjson.StringView(m.Value)
		case "jti":
			c.TokenID, err = strictjson.StringView(m.Value)
		case "aud":
			c.Audience, err = strictjson.AppendStringOrArrayView(audRoom, m.Value)
			c.Audience = slices.Clip(c.Audience) // an append copies
		case "nonce", "at_hash", "c_hash":
			c.idTokenClaim = m.Name
		case "exp", "nbf", "iat":
			t, err := strictjson.NumericDate(m.Value)
			if errors.Is(err, strictjson.ErrRange) {
				return refuse(ErrClaims, m.Name+" is not finite or outside the years 1 to 9999")
			}
			if err != nil {
				return refuse(ErrClaims, m.Name+" is not a NumericDate")
			}
			switch m.Name {
			case "exp":
				c.Expiry = t
			case "nbf":
				c.NotBefore = t
			case "iat":
				c.IssuedAt = t
			}
		}
		if err != nil {
			return refuse(ErrClaims, m.Name+" has the wrong type")
		}
	}
	return nil
}
