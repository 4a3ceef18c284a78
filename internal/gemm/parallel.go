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
const workerSpin = 500 * time.Microsecond

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
	var pending atomic.Int32
	pending.Store(int32(threads - 1))
	tasks := make([]poolTask, threads-1)
	for i := range tasks {
		w := i + 1
		tasks[i] = poolTask{body: body, lo: w * items / threads, hi: (w + 1) * items / threads, pending: &pending}
		pool.workers[i].submit(&tasks[i])
	}

	body(0, items/threads)
	// The other ranges take about as long as this one, so wait by polling,
	// yielding now and then in case a worker shares this thread's P.
	for spins := 0; pending.Load() != 0; spins++ {
		if spins%64 == 63 {
			runtime.Gosched()
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
	body    func(lo, hi int)
	lo, hi  int
	pending *atomic.Int32 // decremented when the range is done
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
		t.pending.Add(-1)
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
