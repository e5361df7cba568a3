package recommend

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Headers the sidecar injects. A request without all three never reaches
// a handler.
const (
	HeaderSub    = "X-Keyless-Sub"
	HeaderClient = "X-Keyless-Client"
	HeaderScope  = "X-Keyless-Scope"
	HeaderLease  = "X-Keyless-Lease"
	// HeaderAPIKey carries the recommender's key for its (simulated)
	// third-party data source. The sidecar injects it; apps never hold it.
	HeaderAPIKey = "X-Api-Key"
)

// Scopes.
const (
	ScopeRead  = "recommendations:read"
	ScopeWrite = "recommendations:write"
)

// Server is the recommender API. Build it with [New].
type Server struct {
	restaurants []Restaurant
	byID        map[string]Restaurant
	apiKey      []byte
	log         *slog.Logger
	now         func() time.Time

	mu    sync.Mutex
	votes map[string]map[string]bool // restaurant -> voters
}

// Options configure [New].
type Options struct {
	// Restaurants is the data set; nil means the bundled one.
	Restaurants []Restaurant
	// APIKey is the data-source key every request must carry in
	// X-Api-Key. Required.
	APIKey string
	// Log receives one line per request; nil discards.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// New builds a Server.
func New(o Options) (*Server, error) {
	if o.APIKey == "" {
		return nil, errors.New("recommend: an API key is required")
	}
	rs := o.Restaurants
	if rs == nil {
		var err error
		if rs, err = Restaurants(); err != nil {
			return nil, err
		}
	}
	s := &Server{restaurants: rs, byID: map[string]Restaurant{}, apiKey: []byte(o.APIKey),
		log: o.Log, now: o.Now, votes: map[string]map[string]bool{}}
	for _, r := range rs {
		s.byID[r.ID] = r
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Handler returns the API: the route table, behind the request log, the
// API-key check and the identity check, in that order.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /recommendations", s.recommendations)
	mux.HandleFunc("POST /votes", s.vote)
	return s.logRequests(s.requireAPIKey(s.requireIdentity(mux)))
}

// identity is what the sidecar said about the caller.
type identity struct {
	Sub, Client string
	Scopes      []string
}

func identityOf(r *http.Request) (identity, bool) {
	id := identity{Sub: r.Header.Get(HeaderSub), Client: r.Header.Get(HeaderClient),
		Scopes: strings.Fields(r.Header.Get(HeaderScope))}
	return id, id.Sub != "" && id.Client != "" && len(id.Scopes) > 0
}

// requireAPIKey refuses a request without the data-source key (401),
// compared in constant time.
func (s *Server) requireAPIKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Values(HeaderAPIKey)
		if len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), s.apiKey) != 1 {
			writeError(w, http.StatusUnauthorized, "invalid_api_key", "a valid data-source API key is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireIdentity refuses a request the sidecar did not vouch for (403).
func (s *Server) requireIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := identityOf(r); !ok {
			writeError(w, http.StatusForbidden, "no_identity", "identity headers from the keyless sidecar are required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// recommendationsResponse is the body of GET /recommendations.
type recommendationsResponse struct {
	For         string            `json:"for"`
	Count       int               `json:"count"`
	Restaurants []restaurantVotes `json:"restaurants"`
}

type restaurantVotes struct {
	Restaurant
	Votes int `json:"votes"`
}

func (s *Server) recommendations(w http.ResponseWriter, r *http.Request) {
	id, _ := identityOf(r)
	if !slices.Contains(id.Scopes, ScopeRead) {
		writeError(w, http.StatusForbidden, "insufficient_scope", "needs "+ScopeRead)
		return
	}
	qv := r.URL.Query()
	q, err := ParseQuery(qv.Get)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	recs := Recommend(s.restaurants, q)
	out := recommendationsResponse{For: id.Sub, Count: len(recs), Restaurants: make([]restaurantVotes, len(recs))}
	s.mu.Lock()
	for i, rec := range recs {
		out.Restaurants[i] = restaurantVotes{Restaurant: rec, Votes: len(s.votes[rec.ID])}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// voteRequest is the body of POST /votes.
type voteRequest struct {
	Restaurant string `json:"restaurant"`
}

func (s *Server) vote(w http.ResponseWriter, r *http.Request) {
	id, _ := identityOf(r)
	// The sidecar already refused leases without the write scope; checking
	// again costs nothing.
	if !slices.Contains(id.Scopes, ScopeWrite) {
		writeError(w, http.StatusForbidden, "insufficient_scope", "needs "+ScopeWrite)
		return
	}
	var v voteRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.Restaurant == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", `body must be {"restaurant": ID}`)
		return
	}
	if _, ok := s.byID[v.Restaurant]; !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such restaurant")
		return
	}
	s.mu.Lock()
	voters := s.votes[v.Restaurant]
	if voters == nil {
		voters = map[string]bool{}
		s.votes[v.Restaurant] = voters
	}
	voters[id.Sub] = true // one vote per person
	n := len(voters)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"restaurant": v.Restaurant, "votes": n})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": msg})
}
