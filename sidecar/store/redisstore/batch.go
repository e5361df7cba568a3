package redisstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher sends the per-request scripts (replay, rate limit) of concurrent
// requests together, as one pipeline per round trip: under load, Redis and this process then pay one
// read and one write system call for many proofs instead of one each,
// which is most of a command's cost. A request waits for nothing: a worker
// takes whatever has queued while the previous batch was in flight, so an
// idle store sends each call at once.
//
// Each script is still one atomic SET NX PXAT; batching changes only how
// calls share a connection.
type batcher struct {
	s     *Store
	calls chan *batchCall
	done  <-chan struct{} // closed by Store.Close
}

type batchCall struct {
	script *redis.Script
	keys   []string
	args   []any
	res    chan batchResult // buffered, 1
}

var errClosed = errors.New("redisstore: store closed")

type batchResult struct {
	val any
	err error
}

const (
	batchWorkers = 4   // pipelines in flight at once
	batchMax     = 128 // calls per pipeline
	// batchTimeout bounds one pipeline; a caller stops waiting when its
	// own context ends.
	batchTimeout = 5 * time.Second
)

func newBatcher(s *Store, ctx context.Context, wg *sync.WaitGroup) *batcher {
	b := &batcher{s: s, calls: make(chan *batchCall, batchWorkers*batchMax), done: ctx.Done()}
	for range batchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.work(ctx)
		}()
	}
	return b
}

// run queues one script call and waits for its result or ctx.
func (b *batcher) run(ctx context.Context, script *redis.Script, keys []string, args ...any) (any, error) {
	c := &batchCall{script: script, keys: keys, args: args, res: make(chan batchResult, 1)}
	select {
	case b.calls <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.done:
		return nil, errClosed
	}
	select {
	case r := <-c.res:
		return r.val, r.err
	case <-b.done:
		return nil, errClosed
	case <-ctx.Done():
		// The script may still run (record the pair, take a token):
		// the caller reports an error (503), never a pass, so that is
		// safe.
		return nil, ctx.Err()
	}
}

// runScript runs script through the batcher, or directly when there is
// none.
func (s *Store) runScript(ctx context.Context, script *redis.Script, keys []string, args ...any) (any, error) {
	if s.batch != nil {
		return s.batch.run(ctx, script, keys, args...)
	}
	v, err := script.EvalSha(ctx, s.c, keys, args...).Result()
	if !isNoScript(err) {
		return v, err
	}
	if err := s.scriptCacheLost(ctx, script); err != nil {
		return nil, err
	}
	return rerun(ctx, s.c, script, keys, args...).Result()
}

func (b *batcher) work(ctx context.Context) {
	batch := make([]*batchCall, 0, batchMax)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case c := <-b.calls:
			batch = append(batch, c)
		}
	drain:
		for len(batch) < batchMax {
			select {
			case c := <-b.calls:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		b.send(ctx, batch)
	}
}

func (b *batcher) send(ctx context.Context, batch []*batchCall) {
	ctx, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	cmds := b.exec(ctx, batch, false)
	// After a Redis restart the script cache is empty: load the script
	// and run the calls that missed it again (EVALSHA runs nothing when
	// it answers NOSCRIPT, so no call runs twice).
	var again []*batchCall
	lost := map[*redis.Script]bool{}
	for i, c := range batch {
		if isNoScript(cmds[i].Err()) {
			again = append(again, c)
			lost[c.script] = true
			continue
		}
		b.answer(c, cmds, i)
	}
	for script := range lost {
		if err := b.s.scriptCacheLost(ctx, script); err != nil {
			for _, c := range again {
				c.res <- batchResult{nil, err}
			}
			return
		}
	}
	if len(again) > 0 {
		cmds = b.exec(ctx, again, true)
		for i, c := range again {
			b.answer(c, cmds, i)
		}
	}
}

func (b *batcher) exec(ctx context.Context, batch []*batchCall, eval bool) []*redis.Cmd {
	p := b.s.c.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		if eval {
			cmds[i] = rerun(ctx, p, c.script, c.keys, c.args...)
		} else {
			cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
	}
	// Exec's error is also each failed command's: read them one by one.
	_, _ = p.Exec(ctx)
	return cmds
}

func (b *batcher) answer(c *batchCall, cmds []*redis.Cmd, i int) {
	v, err := cmds[i].Result()
	c.res <- batchResult{v, err}
}

// rerun runs script again after NOSCRIPT. The replay script was just
// loaded by checkRestart: EVALSHA, so that a restart in between answers
// NOSCRIPT again (an error, 503) rather than run the script on a set whose
// loss nobody recorded. The others are loaded by EVAL.
func rerun(ctx context.Context, c redis.Scripter, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if script == useScript {
		return script.EvalSha(ctx, c, keys, args...)
	}
	return script.Eval(ctx, c, keys, args...)
}

func isNoScript(err error) bool { return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") }
