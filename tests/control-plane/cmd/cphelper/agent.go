package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

const (
	fieldManager = "cphelper-agent"
	// Provisioner is the provisioner name of the default StorageClass that
	// cluster-up creates; PVCs of classes with this provisioner get a hostPath PV.
	provisionerName  = "local.tarantool-operator.dev/hostpath"
	annProvisionedBy = "pv.kubernetes.io/provisioned-by"
	// annRunLocally on a pod makes the agent run its containers' command+args
	// as local processes in the pod's work dir while the pod exists.
	annRunLocally = "local.tarantool-operator.dev/run"
)

var execGVR = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "execs"}

type agent struct {
	kube       kubernetes.Interface
	dyn        dynamic.Interface
	podsDir    string
	volumesDir string
	factory    informers.SharedInformerFactory
	pods       workqueue.TypedRateLimitingInterface[string]
	claims     workqueue.TypedRateLimitingInterface[string]
	volumes    workqueue.TypedRateLimitingInterface[string]
	applied    map[string]string // pod key -> hash of the Exec spec last applied
	procs      *processes
	runRoot    string // short root of the pods' TARANTOOL_RUN_DIRs ("" = <work dir>/run)
	markers    string // the Cartridge double's marker dir ("" = no double)
}

// runAgent runs two small control loops until SIGTERM/SIGINT:
//   - for every pod: a work dir <pods-dir>/<namespace>/<pod> and a kwok Exec
//     object (owned by the pod) that runs `kubectl exec` commands locally in
//     that dir with the pod's environment;
//   - a hostPath provisioner: a PV under <volumes-dir> for every PVC of a
//     StorageClass whose provisioner is provisionerName, deleted with its data
//     once released.
func runAgent(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	podsDir := fs.String("pods-dir", "", "root of the per-pod work dirs")
	volumesDir := fs.String("volumes-dir", "", "root of the hostPath volumes")
	runRoot := fs.String("run-root", "", "short dir for the pods' TARANTOOL_RUN_DIRs (unix socket paths have at most 107 bytes); default <work dir>/run")
	markers := fs.String("double-markers", "", "marker dir of the Cartridge double: one file per Running operator pod")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *podsDir == "" || *volumesDir == "" {
		return errors.New("--kubeconfig, --pods-dir and --volumes-dir are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	a := &agent{applied: map[string]string{}, procs: newProcesses(), runRoot: *runRoot, markers: *markers}
	if a.podsDir, err = filepath.Abs(*podsDir); err != nil {
		return err
	}
	if a.volumesDir, err = filepath.Abs(*volumesDir); err != nil {
		return err
	}
	if a.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if a.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	a.factory = informers.NewSharedInformerFactory(a.kube, 5*time.Minute)
	newQueue := func() workqueue.TypedRateLimitingInterface[string] {
		return workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	}
	a.pods, a.claims, a.volumes = newQueue(), newQueue(), newQueue()
	enqueue := func(q workqueue.TypedRateLimitingInterface[string]) cache.ResourceEventHandler {
		add := func(obj interface{}) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				q.Add(key)
			}
		}
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    add,
			UpdateFunc: func(_, obj interface{}) { add(obj) },
			DeleteFunc: add,
		}
	}
	podInf := a.factory.Core().V1().Pods().Informer()
	pvcInf := a.factory.Core().V1().PersistentVolumeClaims().Informer()
	pvInf := a.factory.Core().V1().PersistentVolumes().Informer()
	scInf := a.factory.Storage().V1().StorageClasses().Informer()
	for _, r := range []struct {
		inf cache.SharedIndexInformer
		q   workqueue.TypedRateLimitingInterface[string]
	}{{podInf, a.pods}, {pvcInf, a.claims}, {pvInf, a.volumes}} {
		if _, err := r.inf.AddEventHandler(enqueue(r.q)); err != nil {
			return err
		}
	}
	a.factory.Start(ctx.Done())
	for _, inf := range []cache.SharedIndexInformer{podInf, pvcInf, pvInf, scInf} {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return errors.New("informer caches did not sync")
		}
	}
	log.Printf("agent ready: pods in %s, volumes in %s", a.podsDir, a.volumesDir)
	go a.loop(ctx, a.pods, a.syncPod)
	go a.loop(ctx, a.claims, a.syncClaim)
	go a.loop(ctx, a.volumes, a.syncVolume)
	<-ctx.Done()
	a.procs.stopAll()
	a.pods.ShutDown()
	a.claims.ShutDown()
	a.volumes.ShutDown()
	return nil
}

func (a *agent) loop(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error) {
	for {
		key, shutdown := q.Get()
		if shutdown {
			return
		}
		if err := sync(ctx, key); err != nil {
			log.Printf("sync %s: %v (will retry)", key, err)
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}

// ---------------------------------------------------------------- exec

func (a *agent) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := a.factory.Core().V1().Pods().Lister().Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		delete(a.applied, key) // the Exec is owned by the pod: the GC removes it
		a.procs.stop(key)
		return a.syncDouble(ns, name, nil, "")
	}
	if err != nil {
		return err
	}
	workDir := filepath.Join(a.podsDir, ns, name)
	run := runDir(a.runRoot, workDir, ns, name)
	if pod.DeletionTimestamp != nil {
		a.procs.stop(key)
		return a.syncDouble(ns, name, pod, run)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}
	if err := ensureRunDir(run, workDir); err != nil {
		return err
	}
	if err := a.syncDouble(ns, name, pod, run); err != nil {
		return err
	}
	if pod.Annotations[annRunLocally] == "true" && pod.Spec.NodeName != "" {
		a.procs.ensure(key, pod, workDir, run)
	}
	exec := desiredExec(pod, workDir, run)
	raw, err := json.Marshal(exec.Object)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	if a.applied[key] == hash {
		return nil
	}
	_, err = a.dyn.Resource(execGVR).Namespace(ns).Apply(ctx, name, exec,
		metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("apply kwok Exec: %w", err)
	}
	a.applied[key] = hash
	return nil
}

func (a *agent) syncDouble(ns, name string, pod *corev1.Pod, run string) error {
	if a.markers == "" {
		return nil
	}
	return syncMarker(a.markers, ns, name, pod, socketPath(run, name))
}

// desiredExec maps a pod to a kwok Exec: one target a container with the
// container's literal env and the downward-API fields we can resolve, and a
// default target for a pod-level exec.
func desiredExec(pod *corev1.Pod, workDir, runDir string) *unstructured.Unstructured {
	targets := make([]interface{}, 0, len(pod.Spec.Containers)+1)
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		targets = append(targets, map[string]interface{}{
			"containers": []interface{}{c.Name},
			"local":      map[string]interface{}{"workDir": workDir, "envs": toList(podEnv(pod, c, workDir, runDir))},
		})
	}
	targets = append(targets, map[string]interface{}{
		"local": map[string]interface{}{"workDir": workDir, "envs": toList(podEnv(pod, nil, workDir, runDir))},
	})
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "kwok.x-k8s.io/v1alpha1",
		"kind":       "Exec",
		"metadata": map[string]interface{}{
			"name":      pod.Name,
			"namespace": pod.Namespace,
			"ownerReferences": []interface{}{map[string]interface{}{
				"apiVersion": "v1", "kind": "Pod", "name": pod.Name, "uid": string(pod.UID),
			}},
		},
		"spec": map[string]interface{}{"execs": targets},
	}}
}

// podEnv is the environment of a command run for the pod: the pod's identity,
// TARANTOOL_RUN_DIR (where the Cartridge double serves the pod's console), and
// for a container its literal env and resolvable downward-API fields.
func podEnv(pod *corev1.Pod, c *corev1.Container, workDir, runDir string) []map[string]interface{} {
	envs := []map[string]interface{}{
		env("POD_NAME", pod.Name),
		env("POD_NAMESPACE", pod.Namespace),
		env("POD_UID", string(pod.UID)),
		env("NODE_NAME", pod.Spec.NodeName),
		env("HOSTNAME", pod.Name),
		env("POD_WORKDIR", workDir),
		env(envRunDir, runDir),
	}
	if c == nil {
		return envs
	}
	envs = append(envs, env("CONTAINER_NAME", c.Name))
	for _, e := range c.Env {
		if e.Name == envRunDir {
			continue // the image's run dir does not exist here: the double serves ours
		}
		if v, ok := resolveEnv(pod, e); ok {
			envs = append(envs, env(e.Name, v))
		}
	}
	return envs
}

func resolveEnv(pod *corev1.Pod, e corev1.EnvVar) (string, bool) {
	if e.ValueFrom == nil {
		return e.Value, true
	}
	if e.ValueFrom.FieldRef == nil {
		return "", false
	}
	switch e.ValueFrom.FieldRef.FieldPath {
	case "metadata.name":
		return pod.Name, true
	case "metadata.namespace":
		return pod.Namespace, true
	case "metadata.uid":
		return string(pod.UID), true
	case "spec.nodeName":
		return pod.Spec.NodeName, true
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, true
	}
	if v, ok := strings.CutPrefix(e.ValueFrom.FieldRef.FieldPath, "metadata.labels['"); ok {
		val, found := pod.Labels[strings.TrimSuffix(v, "']")]
		return val, found
	}
	return "", false
}

func env(name, value string) map[string]interface{} {
	return map[string]interface{}{"name": name, "value": value}
}

func toList(m []map[string]interface{}) []interface{} {
	out := make([]interface{}, len(m))
	for i := range m {
		out[i] = m[i]
	}
	return out
}

// ---------------------------------------------------------------- volumes

func (a *agent) ourClass(name string) bool {
	if name == "" {
		return false
	}
	sc, err := a.factory.Storage().V1().StorageClasses().Lister().Get(name)
	return err == nil && sc.Provisioner == provisionerName
}

func (a *agent) syncClaim(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pvc, err := a.factory.Core().V1().PersistentVolumeClaims().Lister().PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil || pvc.Spec.StorageClassName == nil ||
		!a.ourClass(*pvc.Spec.StorageClassName) {
		return nil
	}
	pvName := "pvc-" + string(pvc.UID)
	if _, err := a.factory.Core().V1().PersistentVolumes().Lister().Get(pvName); err == nil {
		return nil
	}
	size, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		size = resource.MustParse("1Gi")
	}
	dir := filepath.Join(a.volumesDir, pvName)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	hostPathType := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        pvName,
			Annotations: map[string]string{annProvisionedBy: provisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              *pvc.Spec.StorageClassName,
			VolumeMode:                    pvc.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: types.UID(pvc.UID),
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hostPathType},
			},
		},
	}
	_, err = a.kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err == nil {
		log.Printf("provisioned %s (%s) for %s", pvName, size.String(), key)
	}
	return err
}

func (a *agent) syncVolume(ctx context.Context, key string) error {
	pv, err := a.factory.Core().V1().PersistentVolumes().Lister().Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pv.Annotations[annProvisionedBy] != provisionerName || pv.Status.Phase != corev1.VolumeReleased ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.DeletionTimestamp != nil {
		return nil
	}
	if pv.Spec.HostPath != nil && strings.HasPrefix(pv.Spec.HostPath.Path, a.volumesDir+string(os.PathSeparator)) {
		if err := os.RemoveAll(pv.Spec.HostPath.Path); err != nil {
			return err
		}
	}
	err = a.kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	if err == nil || apierrors.IsNotFound(err) {
		log.Printf("deleted released %s", pv.Name)
		return nil
	}
	return err
}
