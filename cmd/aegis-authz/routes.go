package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/olympus/aegis/internal/strictjson"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/scopes"
)

// maxRoutesFile bounds the routes file read at startup.
const maxRoutesFile = 4 << 20

// ErrRoutes marks every problem with a routes file: errors.Is(err,
// ErrRoutes). A problem with one rule is also a *RuleError.
var ErrRoutes = errors.New("invalid routes file")

// RuleError is a problem with one rule of a routes file.
type RuleError struct {
	// Index is the rule's position in "routes", from 0.
	Index int
	// Path is the rule's path, "" when it has none.
	Path string
	// Err says what is wrong.
	Err error
}

// Error names the rule: `routes[2] (path "/data"): methods is empty`.
func (e *RuleError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("routes[%d]: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("routes[%d] (path %q): %v", e.Index, e.Path, e.Err)
}

// Unwrap returns what is wrong.
func (e *RuleError) Unwrap() error { return e.Err }

// Is makes every RuleError an ErrRoutes.
func (e *RuleError) Is(target error) bool { return target == ErrRoutes }

// Rule is one rule of a routes file, checked.
type Rule struct {
	// Methods are the methods the rule matches; nil for every method.
	Methods []string
	// Path is the exact path, or with Prefix the prefix it matches
	// (ending in "/": the file's "/reports/*" is Path "/reports/").
	Path   string
	Prefix bool
	// Public admits requests without a token.
	Public bool
	// Requirements are the scopes the token must grant; none for any
	// valid token.
	Requirements []scopes.Requirement
	// DPoP is the rule's DPoP policy (dpop.Allow, dpop.Require or
	// dpop.Off); dpop.PolicyDefault for the service's (-dpop).
	DPoP dpop.Policy
}

// Matches says whether the rule applies to a request's method and path.
// An exact rule also covers its path with one trailing slash, and a rule
// for GET covers HEAD: many servers route those to the same handler, and
// a stricter rule must not be sidestepped into a laxer one.
func (r *Rule) Matches(method, p string) bool {
	if r.Prefix {
		if !strings.HasPrefix(p, r.Path) {
			return false
		}
	} else if p != r.Path && p != r.Path+"/" {
		return false
	}
	if r.Methods == nil {
		return true
	}
	for _, m := range r.Methods {
		if m == method || m == "GET" && method == "HEAD" {
			return true
		}
	}
	return false
}

// The JSON shape of a routes file.
type (
	routesJSON struct {
		Routes *[]json.RawMessage `json:"routes"`
	}
	ruleJSON struct {
		Methods *[]string   `json:"methods"`
		Path    *string     `json:"path"`
		Scopes  *scopesJSON `json:"scopes"`
		Public  *bool       `json:"public"`
		DPoP    *string     `json:"dpop"`
	}
	scopesJSON struct {
		All *[]string `json:"all"`
		Any *[]string `json:"any"`
	}
)

// LoadRoutes reads and checks the routes file at name.
func LoadRoutes(name string) ([]Rule, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, errors.Join(ErrRoutes, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRoutesFile+1))
	if err != nil {
		return nil, errors.Join(ErrRoutes, err)
	}
	if len(data) > maxRoutesFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrRoutes, maxRoutesFile)
	}
	return ParseRoutes(data)
}

// ParseRoutes checks a routes file:
//
//	{"routes": [
//	  {"methods": ["GET"], "path": "/data", "scopes": {"all": ["data:read"]}},
//	  {"path": "/reports/*", "scopes": {"any": ["reports:read", "admin"]}},
//	  {"path": "/public/*", "public": true},
//	  {"methods": ["POST"], "path": "/payments", "scopes": {"all": ["payments:write"]}, "dpop": "require"},
//	  {"path": "/whoami"}
//	]}
//
// Unknown members, duplicate members and trailing data are refused; an
// error about a rule is a *RuleError naming it.
func ParseRoutes(data []byte) ([]Rule, error) {
	var file routesJSON
	if _, err := strictjson.Shallow(data, 8); err != nil {
		// Duplicate members in a rule are reported with the rule.
		return nil, fmt.Errorf("%w: %v", ErrRoutes, err)
	}
	if err := decodeStrict(data, &file); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRoutes, err)
	}
	if file.Routes == nil {
		return nil, fmt.Errorf(`%w: want an object {"routes": [...]}`, ErrRoutes)
	}
	if len(*file.Routes) == 0 {
		return nil, fmt.Errorf(`%w: "routes" is empty`, ErrRoutes)
	}
	rules := make([]Rule, 0, len(*file.Routes))
	for i, raw := range *file.Routes {
		var rj ruleJSON
		if err := strictjson.Valid(raw, 8); err != nil {
			return nil, &RuleError{Index: i, Err: err}
		}
		if err := decodeStrict(raw, &rj); err != nil {
			return nil, &RuleError{Index: i, Err: err}
		}
		r, err := rj.rule()
		if err != nil {
			p := ""
			if rj.Path != nil {
				p = *rj.Path
			}
			return nil, &RuleError{Index: i, Path: p, Err: err}
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown members
// and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

func (rj ruleJSON) rule() (Rule, error) {
	var r Rule
	if rj.Path == nil || *rj.Path == "" {
		return r, errors.New(`"path" is required`)
	}
	p := *rj.Path
	if strings.HasSuffix(p, "/*") {
		r.Prefix, p = true, strings.TrimSuffix(p, "*")
	}
	if err := checkRulePath(p); err != nil {
		return r, err
	}
	r.Path = p
	if rj.Methods != nil {
		if len(*rj.Methods) == 0 {
			return r, errors.New(`"methods" is empty: omit it to match every method`)
		}
		for _, m := range *rj.Methods {
			if !isToken(m) {
				return r, fmt.Errorf("method %q is not an HTTP method", m)
			}
			if m != strings.ToUpper(m) {
				return r, fmt.Errorf("method %q: methods are case-sensitive, write %q", m, strings.ToUpper(m))
			}
		}
		r.Methods = *rj.Methods
	}
	r.Public = rj.Public != nil && *rj.Public
	if rj.DPoP != nil {
		if r.Public {
			return r, errors.New(`a "public" rule takes no token, so no "dpop" policy`)
		}
		policy, err := dpop.ParsePolicy(*rj.DPoP)
		if err != nil || policy == dpop.PolicyDefault {
			return r, fmt.Errorf(`"dpop" %q: want "allow", "require" or "off"`, *rj.DPoP)
		}
		r.DPoP = policy
	}
	if rj.Scopes != nil {
		if r.Public {
			return r, errors.New(`a rule is either "public" or needs "scopes", not both`)
		}
		if rj.Scopes.All == nil && rj.Scopes.Any == nil {
			return r, errors.New(`"scopes" needs "all" or "any" (omit "scopes" for any valid token)`)
		}
		for _, s := range []struct {
			name string
			list *[]string
			make func(...string) scopes.Requirement
		}{{"all", rj.Scopes.All, scopes.All}, {"any", rj.Scopes.Any, scopes.Any}} {
			if s.list == nil {
				continue
			}
			if len(*s.list) == 0 {
				return r, fmt.Errorf(`"scopes.%s" is empty`, s.name)
			}
			if _, err := scopes.New(*s.list...); err != nil {
				return r, fmt.Errorf(`"scopes.%s": %w`, s.name, err)
			}
			r.Requirements = append(r.Requirements, s.make(*s.list...))
		}
	}
	return r, nil
}

// checkRulePath checks a rule's path (a prefix's with its trailing "/"):
// absolute, clean, decoded, with no query and no other wildcard.
func checkRulePath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return errors.New(`the path must start with "/"`)
	case strings.Contains(p, "*"):
		return errors.New(`"*" is only allowed as the last segment, "/*", for a prefix`)
	case strings.ContainsAny(p, "?#"):
		return errors.New("the path is matched without the query: leave out ? and #")
	case strings.Contains(p, "%"):
		return errors.New("write the path decoded, without %-escapes")
	}
	if _, err := cleanPath(p); err != nil {
		return err
	}
	return nil
}

// cleanPath checks a decoded request path and returns it: it must start
// with "/" and hold no empty, "." or ".." segment (";" parameters
// included, as some servers read "/..;/" as "/../"), no backslash, no
// control character. A single trailing "/" is allowed.
func cleanPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", errors.New(`the path does not start with "/"`)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "", errors.New("the path holds a control character or a backslash")
		}
		if p[i] == ';' {
			// Path parameters ("/data;x"): servers that strip them would
			// serve a path no rule was matched on.
			return "", errors.New(`the path holds a ";" parameter`)
		}
	}
	if p == "/" {
		return p, nil
	}
	segs := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	for _, s := range segs {
		s, _, _ = strings.Cut(s, ";")
		switch s {
		case "":
			return "", errors.New("the path holds an empty segment (//)")
		case ".", "..":
			return "", errors.New(`the path holds a "." or ".." segment`)
		}
	}
	if c := path.Clean(p); c != p && c+"/" != p {
		return "", errors.New("the path is not clean")
	}
	return p, nil
}

// isToken says whether s is an RFC 9110 token, as methods are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
