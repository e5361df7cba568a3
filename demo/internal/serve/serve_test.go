package serve

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"testing"
)

// TestUntil: a server runs until its context is canceled, then shuts down
// cleanly (a request in between is answered); a serve that fails returns
// its error at once.
func TestUntil(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Until(ctx, srv, func() error { return srv.Serve(ln) }) }()
	res, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "ok" {
		t.Errorf("body = %q", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Until after cancel = %v, want nil (clean shutdown)", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String()); err == nil {
		t.Error("the server still answers after shutdown")
	}

	boom := errors.New("listen: address in use")
	if err := Until(context.Background(), &http.Server{}, func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Until with a failing serve = %v, want %v", err, boom)
	}
}

// TestRun: -addr and the command's own flags are parsed before the command
// runs; a bad flag runs nothing.
func TestRun(t *testing.T) {
	f := Flags{Addr: "127.0.0.1:8789", AddrUsage: "listen address"}
	var gotAddr, gotRoot string
	cmd := func(fs *flag.FlagSet) func(context.Context, string) error {
		root := fs.String("root", ".", "root")
		return func(_ context.Context, addr string) error {
			gotAddr, gotRoot = addr, *root
			return nil
		}
	}
	if err := Run(context.Background(), "x", f, cmd, []string{"-root", "/srv", "-addr", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if gotAddr != "127.0.0.1:0" || gotRoot != "/srv" {
		t.Errorf("ran with addr %q root %q", gotAddr, gotRoot)
	}
	gotAddr = ""
	if err := Run(context.Background(), "x", f, cmd, nil); err != nil || gotAddr != f.Addr {
		t.Errorf("defaults: err %v, addr %q", err, gotAddr)
	}
	gotAddr = "unset"
	if err := Run(context.Background(), "x", f, cmd, []string{"-nope"}); err == nil || gotAddr != "unset" {
		t.Errorf("bad flag: err %v, ran %v", err, gotAddr != "unset")
	}
}
