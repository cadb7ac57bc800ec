package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// processes runs the containers of pods annotated with annRunLocally as
// local processes: kwok runs no containers, so this is how a test double
// (e.g. a Tarantool instance) lives "in" a pod. A container's command and args
// run in the pod's work dir with the pod's environment, output to
// <work dir>/<container>.log, each in its own process group. They are stopped
// (SIGTERM, then SIGKILL after the pod's grace period, at most 30 s) when the
// pod is deleted or replaced by a pod of the same name. There is no restart:
// a process that exits stays exited (its exit is logged to the agent's log).
type processes struct {
	mu   sync.Mutex
	pods map[string]*podProcesses // pod key -> processes
}

type podProcesses struct {
	uid   types.UID
	grace time.Duration
	cmds  []*exec.Cmd
	done  []chan struct{}
}

func newProcesses() *processes {
	return &processes{pods: map[string]*podProcesses{}}
}

func (p *processes) ensure(key string, pod *corev1.Pod, workDir, runDir string) {
	p.mu.Lock()
	running := p.pods[key]
	p.mu.Unlock()
	if running != nil && running.uid == pod.UID {
		return
	}
	if running != nil {
		p.stop(key)
	}
	grace := 30 * time.Second
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil && *g < 30 {
		grace = time.Duration(*g) * time.Second
	}
	pp := &podProcesses{uid: pod.UID, grace: grace}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		argv := append(append([]string{}, c.Command...), c.Args...)
		if len(argv) == 0 {
			continue
		}
		if err := pp.start(key, c.Name, argv, podEnv(pod, c, workDir, runDir), workDir); err != nil {
			log.Printf("pod %s container %s: %v", key, c.Name, err)
		}
	}
	p.mu.Lock()
	p.pods[key] = pp
	p.mu.Unlock()
}

func (pp *podProcesses) start(key, container string, argv []string, envs []map[string]interface{}, dir string) error {
	out, err := os.OpenFile(filepath.Join(dir, container+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for _, e := range envs {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%s", e["name"], e["value"]))
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group (stopped as a group); killed if the agent dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		_ = out.Close()
		log.Printf("pod %s container %s (pid %d) exited: %v", key, container, cmd.Process.Pid, err)
		close(done)
	}()
	log.Printf("pod %s container %s: started pid %d: %q", key, container, cmd.Process.Pid, argv)
	pp.cmds = append(pp.cmds, cmd)
	pp.done = append(pp.done, done)
	return nil
}

// stop forgets the processes of a pod at once (a new pod of the same name
// gets new ones) and ends them in the background.
func (p *processes) stop(key string) {
	p.mu.Lock()
	pp := p.pods[key]
	delete(p.pods, key)
	p.mu.Unlock()
	if pp != nil {
		go pp.terminate(pp.grace)
	}
}

// terminate sends SIGTERM to every process group of the pod and SIGKILL to
// those still running after grace; it returns when all have exited.
func (pp *podProcesses) terminate(grace time.Duration) {
	for _, cmd := range pp.cmds {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	expired := false
	for i, done := range pp.done {
		if !expired {
			select {
			case <-done:
				continue
			case <-timer.C:
				expired = true
			}
		}
		_ = syscall.Kill(-pp.cmds[i].Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// stopAll ends every process (the agent is shutting down), with a short grace.
func (p *processes) stopAll() {
	p.mu.Lock()
	all := p.pods
	p.pods = map[string]*podProcesses{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, pp := range all {
		wg.Add(1)
		go func() { defer wg.Done(); pp.terminate(5 * time.Second) }()
	}
	wg.Wait()
}
