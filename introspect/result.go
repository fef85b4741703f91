package introspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/olympus/aegis/internal/strictjson"
)

// Result is an active token as the server described it (RFC 7662 §2.2).
type Result struct {
	Scope     string   // scope, space-separated
	ClientID  string   // client_id
	Subject   string   // sub
	Username  string   // username
	TokenType string   // token_type
	TokenUse  string   // token_use (Ory Hydra)
	Issuer    string   // iss
	TokenID   string   // jti
	Audience  []string // aud, in array form

	Expiry    time.Time // exp; zero when absent
	IssuedAt  time.Time // iat; zero when absent
	NotBefore time.Time // nbf; zero when absent

	raw []strictjson.Member
}

// Raw returns any member of the answer as sent (ext, for instance). It
// shares the answer's buffer and must not be modified; its capacity is its
// length, so an append copies.
func (r *Result) Raw(name string) (json.RawMessage, bool) {
	for _, m := range r.raw {
		if m.Name == name {
			return json.RawMessage(m.Value[:len(m.Value):len(m.Value)]), true
		}
	}
	return nil, false
}

// errAnswer marks an answer that cannot be trusted to mean anything.
var errAnswer = errors.New("malformed introspection answer")

// parseAnswer reads an answer strictly: "active" must be the JSON value
// true or false, and every registered member must have its registered type.
func parseAnswer(body []byte) (*Result, error) {
	members, err := strictjson.Object(body, strictjson.MaxClaimsDepth)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errAnswer, err)
	}
	r := &Result{raw: members}
	active, badDate := "", ""
	for _, m := range members {
		var err error
		switch m.Name {
		case "active":
			active = string(m.Value)
		case "scope":
			r.Scope, err = strictjson.String(m.Value)
		case "client_id":
			r.ClientID, err = strictjson.String(m.Value)
		case "sub":
			r.Subject, err = strictjson.String(m.Value)
		case "username":
			r.Username, err = strictjson.String(m.Value)
		case "token_type":
			r.TokenType, err = strictjson.String(m.Value)
		case "token_use":
			r.TokenUse, err = strictjson.String(m.Value)
		case "iss":
			r.Issuer, err = strictjson.String(m.Value)
		case "jti":
			r.TokenID, err = strictjson.String(m.Value)
		case "aud":
			r.Audience, err = strictjson.StringOrArray(m.Value)
		case "exp":
			r.Expiry, err = strictjson.NumericDate(m.Value)
		case "iat":
			r.IssuedAt, err = strictjson.NumericDate(m.Value)
		case "nbf":
			r.NotBefore, err = strictjson.NumericDate(m.Value)
		}
		if errors.Is(err, strictjson.ErrRange) {
			// A date no real token has: the answer is well-formed, the
			// token's claims are not (refused once active is read).
			badDate = m.Name
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s has the wrong type", errAnswer, m.Name)
		}
	}
	switch active {
	case "true":
		if badDate != "" {
			// Still an errAnswer, and the claims_invalid refusal call hands on.
			return nil, fmt.Errorf("%w: %w", errAnswer, refuse(ErrClaims, badDate+" is not finite or outside the years 1 to 9999"))
		}
		return r, nil
	case "false":
		return nil, ErrInactive
	case "":
		return nil, fmt.Errorf("%w: no active member", errAnswer)
	default:
		return nil, fmt.Errorf("%w: active is not a JSON boolean", errAnswer)
	}
}
