package scopes_test

import (
	"encoding/json"
	"fmt"

	"github.com/olympus/aegis/scopes"
)

func ExampleParse() {
	s, err := scopes.Parse("openid  profile openid data:read")
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Len(), s)
	fmt.Println(s.Has("profile"), s.Has("email"))

	_, err = scopes.Parse("openid\tprofile")
	fmt.Println(err != nil)
	// Output:
	// 3 openid profile data:read
	// true false
	// true
}

func ExampleFromClaim() {
	// RFC 9068 / RFC 7662 "scope": a space-separated string.
	a, _ := scopes.FromClaim(json.RawMessage(`"openid data:read"`))
	// Ory Hydra "scp": an array of strings.
	b, _ := scopes.FromClaim(json.RawMessage(`["openid","data:read"]`))
	fmt.Println(a.Strings(), b.Strings(), a.Equal(b))

	_, err := scopes.FromClaim(json.RawMessage(`["openid", 42]`))
	fmt.Println(err != nil)
	// Output:
	// [openid data:read] [openid data:read] true
	// true
}

func ExampleAll() {
	req := scopes.All("data:read", "data:write")
	granted := scopes.MustNew("openid", "data:read")

	fmt.Println(req.SatisfiedBy(granted))
	fmt.Println(req.Missing(granted))
	fmt.Printf("Bearer error=\"insufficient_scope\", scope=%q\n", req.String())
	// Output:
	// false
	// [data:write]
	// Bearer error="insufficient_scope", scope="data:read data:write"
}

func ExampleAny() {
	req := scopes.Any("admin", "data:read")

	fmt.Println(req.SatisfiedBy(scopes.MustNew("data:read")))
	fmt.Println(req.SatisfiedBy(scopes.MustNew("openid")))
	fmt.Println(req.Missing(scopes.MustNew("openid")))
	// Output:
	// true
	// false
	// [admin data:read]
}

func ExampleHierarchic() {
	m := scopes.Hierarchic(":")
	fmt.Println(m.Match("data", "data:read"))
	fmt.Println(m.Match("data", "data:read:own"))
	fmt.Println(m.Match("data:read", "data"))
	fmt.Println(m.Match("data", "database"))

	req := scopes.All("data:read").Using(m)
	fmt.Println(req.SatisfiedBy(scopes.MustNew("data")))
	// Output:
	// true
	// true
	// false
	// false
	// true
}

func ExampleWildcard() {
	m := scopes.Wildcard(":")
	fmt.Println(m.Match("data:*", "data:read"))
	fmt.Println(m.Match("data:*", "data"))
	fmt.Println(m.Match("data:*", "data:read:own"))
	fmt.Println(m.Match("data:read", "data:*"))
	fmt.Println(m.Match("*", "openid"))

	req := scopes.Any("data:write", "admin").Using(m)
	fmt.Println(req.SatisfiedBy(scopes.MustNew("data:*")))
	// Output:
	// true
	// false
	// false
	// false
	// true
	// true
}

func ExampleSet_MarshalJSON() {
	b, _ := json.Marshal(scopes.Set{})
	fmt.Println(string(b))
	b, _ = json.Marshal(scopes.MustNew("openid", "email"))
	fmt.Println(string(b))
	// Output:
	// []
	// ["openid","email"]
}
