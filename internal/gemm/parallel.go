package gemm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// workerSpin is how long an idle worker polls for its next task before it
// parks. Waking a parked goroutine's thread can take far longer than a small
// conv: on a 2-vCPU KVM guest it took about 100 us, which is the run time of
// a 3x3 conv on 28x28x32. Layers run back to back, so a worker that spins
// across the gap starts the next layer at once.
// NOTE: the value is a trade between latency and idle CPU; it was not tuned
// on other machines.
const workerSpin = 200 * time.Microsecond

// callerSpin is how long parallelFor polls for the other workers to finish
// before it blocks. Polling avoids a wake-up when the ranges end together.
// Blocking lets the OS run a worker whose thread was descheduled, which
// polling on a fully loaded machine would only delay.
const callerSpin = 50 * time.Microsecond

// parallelFor splits [0, items) into contiguous ranges, one per worker, and
// calls body on each range: the caller's goroutine takes the first range and
// long-lived pool workers the others. The worker count is threads, capped
// at items and at GOMAXPROCS.
func parallelFor(items, threads int, body func(lo, hi int)) {
	threads = max(1, min(threads, items, runtime.GOMAXPROCS(0)))
	if threads == 1 {
		body(0, items)
		return
	}
	if !pool.mu.TryLock() {
		// Another goroutine is using the pool: run on fresh goroutines.
		spawnFor(items, threads, body)
		return
	}
	defer pool.mu.Unlock()

	for len(pool.workers) < threads-1 {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		pool.workers = append(pool.workers, w)
		go w.loop()
	}
	done := &poolDone{signal: make(chan struct{}, 1)}
	done.pending.Store(int32(threads - 1))
	tasks := make([]poolTask, threads-1)
	for i := range tasks {
		w := i + 1
		tasks[i] = poolTask{body: body, lo: w * items / threads, hi: (w + 1) * items / threads, done: done}
		pool.workers[i].submit(&tasks[i])
	}

	body(0, items/threads)
	done.wait()
}

// poolDone counts the ranges of one parallelFor that are still running.
type poolDone struct {
	pending atomic.Int32
	// signal receives one value from the worker that finishes last.
	signal chan struct{}
}

// finish marks one range done.
func (d *poolDone) finish() {
	if d.pending.Add(-1) == 0 {
		d.signal <- struct{}{}
	}
}

// wait returns when every range is done: it polls for callerSpin, because
// the other ranges take about as long as the caller's, then blocks.
func (d *poolDone) wait() {
	deadline := time.Now().Add(callerSpin)
	for i := 1; d.pending.Load() != 0; i++ {
		if i%256 == 0 && time.Now().After(deadline) {
			<-d.signal
			return
		}
	}
}

// spawnFor is parallelFor on new goroutines, for callers that find the pool
// busy.
func spawnFor(items, threads int, body func(lo, hi int)) {
	var wg sync.WaitGroup
	for w := 1; w < threads; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(w*items/threads, (w+1)*items/threads)
		}()
	}
	body(0, items/threads)
	wg.Wait()
}

// workerPool is the set of long-lived worker goroutines. One parallelFor at
// a time uses it, holding mu.
type workerPool struct {
	mu      sync.Mutex
	workers []*poolWorker
}

var pool workerPool

// poolTask is one range of a parallelFor.
type poolTask struct {
	body   func(lo, hi int)
	lo, hi int
	done   *poolDone
}

// poolWorker runs the tasks submitted to it, one at a time.
type poolWorker struct {
	task     atomic.Pointer[poolTask]
	sleeping atomic.Bool
	wake     chan struct{}
}

// submit hands t to the worker and wakes it if it is parked. A worker loads
// task again after it sets sleeping and before it blocks, so either the
// worker finds t or submit finds sleeping set and sends the wake-up.
func (w *poolWorker) submit(t *poolTask) {
	w.task.Store(t)
	if w.sleeping.Load() {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (w *poolWorker) loop() {
	for {
		t := w.next()
		t.body(t.lo, t.hi)
		t.done.finish()
	}
}

// next returns the next task, polling for workerSpin and then parking.
func (w *poolWorker) next() *poolTask {
	deadline := time.Now().Add(workerSpin)
	for i := 1; ; i++ {
		if w.task.Load() != nil {
			return w.task.Swap(nil)
		}
		if i%1024 == 0 && time.Now().After(deadline) {
			break
		}
	}
	for {
		w.sleeping.Store(true)
		if t := w.task.Swap(nil); t != nil {
			w.sleeping.Store(false)
			return t
		}
		<-w.wake
		w.sleeping.Store(false)
		if t := w.task.Swap(nil); t != nil {
			return t
		}
	}
}
