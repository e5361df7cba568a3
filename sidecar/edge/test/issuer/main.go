//go:build !js

// Command issuer is the edge tests' loopback world: an issuer (JWKS and a
// lease mint), an echo origin that records what it receives, and the
// native sidecar (sidecar/proxy) on the same configuration as the Worker,
// so a test can compare the two. It prints one JSON line with the URLs and
// the configuration, then serves until stdin closes.
//
//	go run ./sidecar/edge/test/issuer sidecar/edge/testdata/edge.yaml
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/revfeed"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

const issuer = "https://auth.example.test"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "issuer:", err)
		os.Exit(1)
	}
}

// seen is one request the origin received.
type seen struct {
	Method string              `json:"method"`
	URI    string              `json:"uri"`
	Host   string              `json:"host"`
	Header map[string][]string `json:"header"`
	Body   string              `json:"body"`
}

func listen() (net.Listener, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	return l, "http://" + l.Addr().String(), nil
}

func serve(l net.Listener, h http.Handler) {
	s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go s.Serve(l)
}

func run(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: issuer CONFIG.yaml")
	}
	tmpl, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	keys, err := token.NewKeySet(time.Now())
	if err != nil {
		return err
	}

	// Origin: records every request, counts hits.
	var hits atomic.Int64
	var mu sync.Mutex
	var last seen
	lo, origin, err := listen()
	if err != nil {
		return err
	}
	serve(lo, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = seen{r.Method, r.RequestURI, r.Host, r.Header.Clone(), string(b)}
		mu.Unlock()
		w.Header().Set("Server", "secret-backend/1.0")
		w.Header().Set("X-Powered-By", "php/5")
		w.Header().Set("X-Keyless-Sub", "backend-forged")
		w.Header().Set("Content-Type", "application/json")
		// Two cookies, one with a comma in its Expires, and a list-valued
		// field: the Worker must hand each back exactly.
		w.Header().Add("Set-Cookie", "a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("Link", `</a>; rel="x", </b>; rel="y"`)
		io.WriteString(w, `{"ok":true}`)
	}))

	// Issuer: JWKS, mint, revoke (native side), origin introspection.
	revoked := &memstore.Revocations{}
	li, base, err := listen()
	if err != nil {
		return err
	}
	cfgText := strings.NewReplacer("${ORIGIN}", origin, "${JWKS}", base+"/jwks").Replace(string(tmpl))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		b, _ := keys.JWKS()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(b)
	})
	mux.HandleFunc("POST /mint", func(w http.ResponseWriter, r *http.Request) {
		tok, err := mint(keys, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, tok)
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Kind  store.Kind `json:"kind"`
			Value string     `json:"value"`
			Until int64      `json:"until"`
		}
		if json.NewDecoder(r.Body).Decode(&p) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		revoked.Revoke(r.Context(), store.Revocation{Kind: p.Kind, Value: p.Value}, time.Unix(p.Until, 0))
		w.WriteHeader(http.StatusNoContent)
	})
	// The issuer's revocation log (a real bolt log in a temporary
	// directory) and its feed, as `keyless serve` serves them: a
	// revocation written here reaches the Worker only through the feed.
	dir, err := os.MkdirTemp("", "keyless-edge-issuer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := boltstore.Open(dir+"/"+boltstore.FileName, boltstore.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer db.Close()
	feedSecret := rand.Text()
	feed := &revfeed.Handler{Log: db, Secret: feedSecret}
	db.OnRevocation(feed.Notify)
	var feedDown, feedSlow, feedSnapshot atomic.Bool
	var snapshots atomic.Int64
	mux.HandleFunc("GET /revocations", func(w http.ResponseWriter, r *http.Request) {
		if feedSnapshot.CompareAndSwap(true, false) {
			// Once: answer this poll as a new follower's, with a snapshot
			// of the log (which holds only what was written to it).
			q := r.URL.Query()
			q.Set("after", "0")
			r.URL.RawQuery = q.Encode()
			snapshots.Add(1)
		}
		if feedSlow.Load() {
			// A slow issuer: no answer until the follower gives up (or
			// 30 s, so a test never leaves it hanging).
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
			return
		}
		if feedDown.Load() {
			// Unreachable: the connection is dropped without an answer.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		feed.ServeHTTP(w, r)
	})
	mux.HandleFunc("POST /log/revoke", func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Kind  store.Kind `json:"kind"`
			Value string     `json:"value"`
			Until int64      `json:"until"`
		}
		if json.NewDecoder(r.Body).Decode(&p) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if err := db.Revoke(r.Context(), store.Revocation{Kind: p.Kind, Value: p.Value}, time.Unix(p.Until, 0)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /feed/{state}", func(w http.ResponseWriter, r *http.Request) {
		feedDown.Store(r.PathValue("state") == "down")
		feedSlow.Store(r.PathValue("state") == "slow")
		feedSnapshot.Store(r.PathValue("state") == "snapshot")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /feed/snapshots", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, snapshots.Load())
	})
	mux.HandleFunc("GET /origin", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"hits": hits.Load(), "last": last})
	})
	serve(li, mux)

	// The native sidecar on the same configuration.
	cfg, err := proxy.ParseConfig([]byte(cfgText))
	if err != nil {
		return err
	}
	os.Setenv("ECHO_API_KEY", "origin-secret")
	lp, native, err := listen()
	if err != nil {
		return err
	}
	// The tests address the sidecar by its loopback address: an alias of
	// the public host (a request for any other host is 421).
	cfg.Hosts = append(cfg.Hosts, lp.Addr().String())
	p, err := proxy.New(cfg, proxy.Options{
		Revocations: revoked,
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	srv := p.NewServer(p)
	go srv.Serve(lp)

	out, _ := json.Marshal(map[string]string{
		"issuer": base, "jwks": base + "/jwks", "origin": origin, "native": native, "config": cfgText,
		"feed": base + "/revocations", "feed_secret": feedSecret,
	})
	fmt.Println(string(out))
	// Serve until the test closes stdin (or kills us).
	io.Copy(io.Discard, os.Stdin)
	srv.Shutdown(context.Background())
	return nil
}

// mintSpec is a lease request; zero fields take the defaults of a valid
// lease for the reference app.
type mintSpec struct {
	Sub      string   `json:"sub"`
	ClientID string   `json:"client_id"`
	Scope    []string `json:"scope"`
	JKT      string   `json:"jkt"`
	LeaseID  *string  `json:"lease_id"` // null: random; "": no lease_id
	Aud      []string `json:"aud"`
	TTL      int      `json:"ttl_s"`
	AgoS     int      `json:"issued_ago_s"` // mint as if this long ago
	Issuer   string   `json:"iss"`
	Foreign  bool     `json:"foreign_keys"` // signed by a key the JWKS lacks
	Preview  bool     `json:"preview"`
}

func mint(keys *token.KeySet, body io.Reader) (string, error) {
	var s mintSpec
	if err := json.NewDecoder(body).Decode(&s); err != nil {
		return "", err
	}
	now := time.Now().Add(-time.Duration(s.AgoS) * time.Second)
	m := &token.Minter{Keys: keys, Issuer: issuer, Now: func() time.Time { return now }}
	if s.Issuer != "" {
		m.Issuer = s.Issuer
	}
	if s.Foreign {
		ks, err := token.NewKeySet(now)
		if err != nil {
			return "", err
		}
		m.Keys = ks
	}
	spec := token.Spec{Subject: s.Sub, ClientID: s.ClientID, Scope: s.Scope, JKT: s.JKT, Audience: s.Aud,
		TTL: time.Duration(s.TTL) * time.Second, Preview: s.Preview}
	if spec.Subject == "" {
		spec.Subject = "alice"
	}
	if spec.ClientID == "" {
		spec.ClientID = "app1"
	}
	if len(spec.Audience) == 0 {
		spec.Audience = []string{"https://api.example.test"}
	}
	if s.LeaseID == nil {
		var b [8]byte
		rand.Read(b[:])
		spec.LeaseID = fmt.Sprintf("lease-%x", b)
	} else {
		spec.LeaseID = *s.LeaseID
	}
	raw, _, err := m.Issue(context.Background(), spec)
	return raw, err
}
