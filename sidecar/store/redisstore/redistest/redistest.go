// Package redistest runs a real redis-server for tests: on a free loopback
// port, without persistence, stopped when the test ends.
//
//	srv := redistest.Start(t)
//	st, err := redisstore.New(srv.URL(), redisstore.Options{})
//
// The server is $REDIS_SERVER when set, else redis-server on PATH, else
// Debian's /usr/bin/redis-server. When it is missing, [Start] skips the
// test, or fails it when the CI environment variable is set (CI installs
// Debian's redis-server, so a missing binary there is a broken setup, not
// a reason to pass). [Server.Kill] and [Server.Restart] inject faults: Restart
// brings the server back on the same port, empty, as a Redis without
// persistence comes back after a crash.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is the redis-server looked up on PATH, then at Debian's path,
// unless the environment variable EnvBinary names one.
const Binary = "redis-server"

// EnvBinary, when set, is the path of the redis-server to run.
const EnvBinary = "REDIS_SERVER"

const debianPath = "/usr/bin/redis-server"

// startTimeout bounds the wait for a started server to answer PING.
const startTimeout = 10 * time.Second

// Server is one running redis-server.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	cluster bool

	mu   sync.Mutex
	proc *os.Process
	done chan struct{} // closed when proc has exited
	out  *syncBuffer
}

// syncBuffer is written by exec's copying goroutine and read by Output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Start starts a redis-server on 127.0.0.1 and stops it in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartCluster starts a one-node Redis Cluster holding every slot: enough
// to prove that each command touches keys of one slot only (a Cluster
// refuses others with CROSSSLOT) and that the client works in Cluster
// mode. Connect with ClusterURL. Restart is not supported.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

// ClusterURL is a redis:// URL that makes redisstore.New use a Cluster
// client.
func (s *Server) ClusterURL() string { return "redis://" + s.Addr() + "?cluster=true" }

func start(t testing.TB, cluster bool) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redistest: redis-server not found and CI is set (install Debian's redis-server): %v", err)
		} else {
			t.Skipf("redistest: redis-server not installed: %v", err)
		}
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), cluster: cluster}
	var lastErr error
	for range 5 { // a port picked free may be taken before redis binds it
		s.port, lastErr = freePort()
		if lastErr != nil {
			continue
		}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

func findBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return exec.LookPath(p)
	}
	bin, err := exec.LookPath(Binary)
	if err == nil {
		return bin, nil
	}
	if _, serr := os.Stat(debianPath); serr == nil {
		return debianPath, nil
	}
	return "", err
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is a redis:// URL for the server, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Kill stops the server at once (SIGKILL), as a crash would. Killing a
// stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.Kill()
	<-s.done
	s.proc = nil
}

// Pause stops the server without ending it (SIGSTOP), as a stall would
// (a long fork, a swapped-out host): connections stay open and nothing
// answers until [Server.Resume]. The data is kept.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		if err := s.proc.Signal(syscall.SIGSTOP); err != nil {
			s.t.Fatalf("redistest: pause: %v", err)
		}
	}
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		if err := s.proc.Signal(syscall.SIGCONT); err != nil {
			s.t.Fatalf("redistest: resume: %v", err)
		}
	}
}

// Restart kills the server if it runs and starts a new, empty one on the
// same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Output is what the server printed, for failure messages.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := new(syncBuffer)
	cmd := exec.Command(s.bin,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(s.port),
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--loglevel", "warning",
	)
	if s.cluster {
		cmd.Args = append(cmd.Args, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(s.dir, fmt.Sprintf("nodes-%d.conf", s.port)))
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for {
		if ping(s.Addr()) == nil {
			s.proc, s.done, s.out = cmd.Process, done, out
			if s.cluster {
				if err := assignAllSlots(s.Addr(), deadline); err != nil {
					cmd.Process.Kill()
					<-done
					s.proc = nil
					return err
				}
			}
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited: %v: %s", waitErr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on port %d did not answer PING within %v: %s", s.port, startTimeout, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ping(addr string) error {
	line, err := command(addr, "PING")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// command sends one inline command and returns the first reply line.
func command(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "$") { // a bulk string: return its body
		n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		if n < 0 {
			return "", nil
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return "", err
		}
		return string(body[:n]), nil
	}
	return line, nil
}

// assignAllSlots makes a fresh cluster node own every slot and waits for
// cluster_state:ok.
func assignAllSlots(addr string, deadline time.Time) error {
	if line, err := command(addr, "CLUSTER ADDSLOTSRANGE 0 16383"); err != nil || !strings.HasPrefix(line, "+OK") {
		return fmt.Errorf("CLUSTER ADDSLOTSRANGE: %q, %v", line, err)
	}
	for {
		info, err := command(addr, "CLUSTER INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ok: %q, %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
