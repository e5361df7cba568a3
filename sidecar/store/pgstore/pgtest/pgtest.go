// Package pgtest runs a real PostgreSQL server for tests: initdb in a
// temporary directory, postgres on a free loopback port, torn down when the
// tests end.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.NewDB(t) // a fresh database on the shared server
//		...
//	}
//
// One shared server per test binary ([Shared], [NewDB]) keeps start-up to
// about a second per package; a test that stops or kills the server (an
// outage) starts its own with [Start].
//
// The binaries are Debian's (package postgresql, under
// /usr/lib/postgresql/VERSION/bin) unless $PGTEST_BIN names a directory.
// postgres refuses to run as root, so when the tests run as root (CI) the
// server runs as the unprivileged user nobody: the data directory is
// created for it and initdb and postgres are started with its credentials.
// Authentication is "trust" on loopback only; fsync is off (the tests kill
// processes, not the machine) unless $PGTEST_FSYNC is "on". When the binaries are missing the test is
// skipped, or fails when $CI is set (CI installs them in .ci/deps).
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvBin, when set, is the directory holding initdb and postgres.
const EnvBin = "PGTEST_BIN"

// EnvFsync set to "on" makes the server fsync its commits, as a
// production one does: benchmarks comparing it with the embedded store
// (which always fsyncs) set it. Tests leave it off for speed.
const EnvFsync = "PGTEST_FSYNC"

// startTimeout bounds the wait for a started server to accept connections.
const startTimeout = 15 * time.Second

// Server is one running PostgreSQL server.
type Server struct {
	bin  string
	dir  string // data directory (and socket directory)
	port int
	cred *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
}

// binDir finds the PostgreSQL binaries, "" when there are none.
func binDir() string {
	if d := os.Getenv(EnvBin); d != "" {
		return d
	}
	ds, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(ds)
	for i := len(ds) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(ds[i], "postgres")); err == nil {
			return ds[i]
		}
	}
	return ""
}

// Start initialises and starts a dedicated server, stopped in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		if s == nil && os.Getenv("CI") == "" {
			t.Skip("pgtest: " + err.Error())
		}
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	dbSeq      atomic.Int64
)

// Shared returns the server shared by every test of the binary, starting
// it on first use; [Main] stops it.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		if shared == nil && os.Getenv("CI") == "" {
			t.Skip("pgtest: " + sharedErr.Error())
		}
		t.Fatal(sharedErr)
	}
	return shared
}

// Main runs the tests and stops the shared server (if one was started).
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

// NewDB creates a fresh, empty database on the shared server and returns
// its connection URL: tests share the server, never data.
func NewDB(t testing.TB) string {
	t.Helper()
	return Shared(t).NewDB(t)
}

// NewDB creates a fresh database on s and returns its URL.
func (s *Server) NewDB(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return s.URL(name)
}

// URL is the connection URL of database db.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// start runs initdb and postgres. A nil Server with an error means the
// binaries are missing (skip); a Server with an error is a failure.
func start() (*Server, error) {
	bin := binDir()
	if bin == "" {
		return nil, fmt.Errorf("no PostgreSQL binaries (apt-get install postgresql, or set $%s)", EnvBin)
	}
	s := &Server{bin: bin}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return s, err
	}
	s.dir = dir
	if os.Geteuid() == 0 {
		// postgres will not run as root: hand the directory to nobody.
		u, err := user.Lookup("nobody")
		if err != nil {
			return s, fmt.Errorf("pgtest: running as root needs the user nobody: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return s, err
		}
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return s, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return s, err
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := s.Restart(); err != nil {
		s.Close()
		return s, err
	}
	return s, nil
}

// Restart starts the server again after [Server.Stop] or [Server.Kill], on
// the same port and data, and waits until it accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("pgtest: server is running")
	}
	fsync := "off"
	if os.Getenv(EnvFsync) == "on" {
		fsync = "on"
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-k", s.dir, "-h", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-c", "fsync="+fsync, "-c", "full_page_writes="+fsync, "-c", "max_connections=200",
		"-c", "shared_buffers=16MB", "-c", "log_min_messages=fatal")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	cmd.Dir = s.dir
	s.out.Reset()
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			c.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("pgtest: postgres exited: %s", s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres did not accept connections within %v: %v", startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down (fast shutdown: clients are disconnected)
// and waits for it to exit.
func (s *Server) Stop() { s.signal(syscall.SIGINT) }

// Kill kills the server (SIGKILL on its process group), as a crash would.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	if sig == syscall.SIGKILL {
		_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	} else {
		_ = s.cmd.Process.Signal(sig)
	}
	select {
	case <-s.done:
	case <-time.After(startTimeout):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	s.Stop()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}
