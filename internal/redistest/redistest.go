// Package redistest runs real redis-server processes for Aegis's tests: a
// private server a test may stop, restart and pause, or the shared one CI
// names in AEGIS_TEST_REDIS_URL. Without redis-server a test fails when the
// environment variable CI is set and is skipped otherwise.
//
// It is a nested module (github.com/olympus/aegis/internal/redistest), so
// that go-redis enters only the modules whose tests use Redis
// (ratelimit/redisstore, middleware/soak, examples, examples/hydra), never
// the root module; being internal to github.com/olympus/aegis, nothing
// outside this repository can import it.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
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

	"github.com/redis/go-redis/v9"
)

// Server is a private redis-server on a loopback port, which a test may
// stop, restart (on the same port) and pause.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// serverBin returns the path of redis-server, or ends the test: a
// failure when the environment variable CI is set, a skip otherwise.
func serverBin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if ci := strings.ToLower(os.Getenv("CI")); ci != "" && ci != "false" && ci != "0" {
			t.Fatalf("redis-server is required under CI: %v", err)
		}
		t.Skipf("redis-server not on PATH (apt-get install redis-server): %v", err)
	}
	return bin
}

// Start starts a private redis-server, stopped at the end of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	r := &Server{t: t, bin: serverBin(t), dir: t.TempDir()}
	t.Cleanup(r.Stop)
	// A free port can be taken by someone else before redis binds it;
	// then pick another.
	var err error
	for range 5 {
		r.port = FreePort(t)
		if err = r.start(); err == nil {
			return r
		}
	}
	t.Fatalf("redis-server: %v", err)
	return nil
}

// FreePort returns a loopback port nobody listened on a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is the server's host:port.
func (r *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Restart starts the stopped server again on the same port, empty.
func (r *Server) Restart() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("redis-server restart: %v", err)
	}
}

func (r *Server) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return errors.New("already running")
	}
	logfile := filepath.Join(r.dir, "redis.log")
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", r.dir,
		"--logfile", logfile,
		"--daemonize", "no",
	)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	r.cmd, r.done = cmd, done

	// Poll PING, bounded; give up early if the server died (port taken).
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ping(r.Addr())
		if err == nil {
			return nil
		}
		select {
		case <-done:
			r.cmd, r.done = nil, nil
			return fmt.Errorf("exited on port %d: %v; log: %s", r.port, err, tail(logfile))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.stopLocked()
			return fmt.Errorf("no PONG on port %d within 10s: %v; log: %s", r.port, err, tail(logfile))
		}
	}
}

// ping sends one inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// Stop stops the server (resuming it first if paused) and waits for it to
// exit; it does nothing if the server is not running.
func (r *Server) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

func (r *Server) stopLocked() {
	if r.cmd == nil {
		return
	}
	p := r.cmd.Process
	_ = p.Signal(syscall.SIGCONT)
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = p.Kill()
		<-r.done
	}
	r.cmd, r.done = nil, nil
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing is
// answered, like a hung Redis. Resume or Stop undoes it.
func (r *Server) Pause() { r.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (r *Server) Resume() { r.signal(syscall.SIGCONT) }

func (r *Server) signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		r.t.Fatalf("redis-server not running")
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("redis-server %v: %v", sig, err)
	}
}

// Client returns a go-redis client of the server, closed at the end of the
// test. ContextTimeoutEnabled is on unless opts change it.
func (r *Server) Client(opts ...func(*redis.Options)) *redis.Client {
	return NewClient(r.t, &redis.Options{Addr: r.Addr()}, opts...)
}

// NewClient returns a go-redis client for o, closed at the end of the
// test, with ContextTimeoutEnabled on unless opts change it.
func NewClient(t testing.TB, o *redis.Options, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o.ContextTimeoutEnabled = true
	// Redis 7.0 does not know CLIENT MAINT_NOTIFICATIONS; don't ask.
	o.DisableIdentity = true
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Shared returns a client factory for tests that do not stop Redis:
// the server named by AEGIS_TEST_REDIS_URL when set (as CI does), else a
// private one. Keys must be unique to the test (prefix them with the test's name).
func Shared(t testing.TB) func(opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	if url := os.Getenv("AEGIS_TEST_REDIS_URL"); url != "" {
		o, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("AEGIS_TEST_REDIS_URL: %v", err)
		}
		return func(opts ...func(*redis.Options)) *redis.Client {
			oc := *o
			return NewClient(t, &oc, opts...)
		}
	}
	return Start(t).Client
}
