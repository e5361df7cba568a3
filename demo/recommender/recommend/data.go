// Package recommend is the Where2Eat recommender API: restaurant
// recommendations over a bundled data set, and group votes.
//
// It runs behind the keyless sidecar and trusts nothing else: [Server]
// serves only connections whose TLS client certificate the demo CA signed
// for the proxy ([ServerTLS]), only requests carrying the data-source API key
// the proxy injects, and only with the identity headers the proxy injects
// (X-Keyless-Sub, X-Keyless-Client, X-Keyless-Scope). It never sees a user
// token: each request is logged as one JSON line saying which identity
// headers arrived and whether an Authorization, DPoP or Cookie header did
// (none should).
//
// # Endpoints
//
//	GET  /recommendations?cuisine=&price=&near=   scope recommendations:read
//	POST /votes {"restaurant": ID}                scope recommendations:write
//
// Restaurants carry an owner_email, which the sidecar's policy redacts.
package recommend

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Restaurant is one entry of the data set.
type Restaurant struct {
	ID            string  `json:"id"`
	Name          string  `json:"name"`
	Cuisine       string  `json:"cuisine"`
	Price         int     `json:"price"` // 1 (cheap) to 4
	Neighbourhood string  `json:"neighbourhood"`
	Rating        float64 `json:"rating"` // 0 to 5
	// OwnerEmail is personal data the API returns and the sidecar redacts.
	OwnerEmail string `json:"owner_email"`
}

//go:embed restaurants.json
var restaurantsJSON []byte

// Restaurants returns the bundled data set.
func Restaurants() ([]Restaurant, error) {
	var rs []Restaurant
	if err := json.Unmarshal(restaurantsJSON, &rs); err != nil {
		return nil, fmt.Errorf("recommend: bundled data: %w", err)
	}
	return rs, nil
}

// Query is what GET /recommendations filters on. Zero values match all.
type Query struct {
	Cuisine string // exact, case-insensitive
	// MaxPrice keeps restaurants at this price level or below (1-4).
	MaxPrice int
	// Near is a neighbourhood, exact, case-insensitive.
	Near string
	// Limit caps the result; zero means DefaultLimit.
	Limit int
}

// DefaultLimit is how many recommendations a query returns at most.
const DefaultLimit = 12

// ParseQuery reads a Query from URL parameters; a bad value is an error
// naming the parameter.
func ParseQuery(get func(string) string) (Query, error) {
	q := Query{Cuisine: strings.TrimSpace(get("cuisine")), Near: strings.TrimSpace(get("near"))}
	for _, s := range []struct{ name, v string }{{"cuisine", q.Cuisine}, {"near", q.Near}} {
		if len(s.v) > 64 || strings.ContainsFunc(s.v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return Query{}, fmt.Errorf("%s: invalid value", s.name)
		}
	}
	if p := get("price"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 4 {
			return Query{}, fmt.Errorf("price: want 1 to 4")
		}
		q.MaxPrice = n
	}
	return q, nil
}

// Recommend filters rs by q and orders the result by rating, best first
// (then by name, so the order is stable). It does not modify rs.
func Recommend(rs []Restaurant, q Query) []Restaurant {
	out := []Restaurant{}
	for _, r := range rs {
		if q.Cuisine != "" && !strings.EqualFold(r.Cuisine, q.Cuisine) {
			continue
		}
		if q.MaxPrice != 0 && r.Price > q.MaxPrice {
			continue
		}
		if q.Near != "" && !strings.EqualFold(r.Neighbourhood, q.Near) {
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Restaurant) int {
		if a.Rating != b.Rating {
			if a.Rating > b.Rating {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}
