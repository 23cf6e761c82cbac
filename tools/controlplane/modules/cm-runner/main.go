// Command cm-runner runs a chosen set of cert-manager's own controllers
// against a Kubernetes API server, for Ferrum's local test control plane.
//
// cert-manager's controller binary (cmd/controller) is a separate Go module
// that cannot be fetched from the module proxy, but everything it runs is
// public in the root module: the context factory and the registry of known
// controllers in pkg/controller, and the controllers themselves, which
// register from init() in their packages. This program builds the context,
// constructs the controllers named by --controllers, starts the shared
// informers (after constructing the controllers, so that every informer they
// asked for is started), runs the controllers and, once the informer caches
// have synced, prints the line "cm-runner: ready" to stderr.
//
// Unlike cert-manager's controller there is no leader election, no metrics
// listener unless --metrics-listen-address is set, and no healthz listener,
// so several runners can share one machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	clusterissuerscontroller "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"

	// Controllers register themselves with pkg/controller from init().
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"

	// The issuers and clusterissuers controllers look up the implementation
	// of each Issuer type in pkg/issuer's registry; these two register the
	// SelfSigned and CA types from init().
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// ReadyLine is printed to stderr once the informer caches have synced.
const ReadyLine = "cm-runner: ready"

// defaultControllers are the controllers run when --controllers is not given,
// named exactly as cert-manager registers them.
var defaultControllers = []string{
	"certificates-trigger",
	"certificates-key-manager",
	"certificates-request-manager",
	"certificates-issuing",
	"certificates-readiness",
	"certificates-revision-manager",
	"certificaterequests-approver",
	"issuers",
	"clusterissuers",
	"certificaterequests-issuer-selfsigned",
	"certificaterequests-issuer-ca",
}

type options struct {
	kubeconfig               string
	controllers              []string
	clusterResourceNamespace string
	namespace                string
	workers                  int
	qps                      float64
	burst                    int
	minBackoff               time.Duration
	maxBackoff               time.Duration
	enableOwnerRef           bool
	metricsListenAddress     string
	featureGates             string
	shutdownTimeout          time.Duration
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "cm-runner: error: %v\n", err)
		logf.FlushLogs()
		os.Exit(1)
	}
	logf.FlushLogs()
}

func parseFlags() (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("cm-runner", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: cm-runner --kubeconfig PATH [flags]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nControllers known to this build: %s\n", strings.Join(knownControllers(), ","))
	}
	controllers := strings.Join(defaultControllers, ",")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path to the kubeconfig to use (required)")
	fs.StringVar(&controllers, "controllers", controllers, "comma-separated names of the cert-manager controllers to run")
	fs.StringVar(&o.clusterResourceNamespace, "cluster-resource-namespace", "cert-manager",
		"namespace holding the Secrets referenced by ClusterIssuers")
	fs.StringVar(&o.namespace, "namespace", "",
		"watch only this namespace (default: all namespaces; clusterissuers is then not run)")
	fs.IntVar(&o.workers, "workers", 5, "worker goroutines per controller")
	fs.Float64Var(&o.qps, "kube-api-qps", 20, "client QPS when the API server has API Priority and Fairness off")
	fs.IntVar(&o.burst, "kube-api-burst", 50, "client burst when the API server has API Priority and Fairness off")
	fs.DurationVar(&o.minBackoff, "certificate-request-minimum-backoff-duration", time.Hour,
		"first delay before re-issuing a Certificate whose issuance failed")
	fs.DurationVar(&o.maxBackoff, "certificate-request-maximum-backoff-duration", 32*time.Hour,
		"largest delay before re-issuing a Certificate whose issuance failed")
	fs.BoolVar(&o.enableOwnerRef, "enable-certificate-owner-ref", false,
		"make each Certificate the owner of its Secret")
	fs.StringVar(&o.metricsListenAddress, "metrics-listen-address", "",
		"serve Prometheus metrics on this address (e.g. 127.0.0.1:0); empty disables the listener")
	fs.StringVar(&o.featureGates, "feature-gates", "", "cert-manager controller feature gates, e.g. Foo=true,Bar=false")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second,
		"how long to wait for the controllers to stop after SIGTERM/SIGINT")
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		fs.Var(klogFlags.Lookup(name).Value, name, klogFlags.Lookup(name).Usage)
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.kubeconfig == "" {
		return nil, errors.New("--kubeconfig is required")
	}
	if o.workers < 1 {
		return nil, errors.New("--workers must be at least 1")
	}
	known := controllerpkg.Known()
	seen := map[string]bool{}
	for _, name := range strings.Split(controllers, ",") {
		name = strings.TrimSpace(name)
		if name == "" || seen[name] {
			continue
		}
		if _, ok := known[name]; !ok {
			return nil, fmt.Errorf("unknown controller %q in --controllers (known: %s)", name, strings.Join(knownControllers(), ","))
		}
		seen[name] = true
		o.controllers = append(o.controllers, name)
	}
	if len(o.controllers) == 0 {
		return nil, errors.New("--controllers names no controller")
	}
	if o.featureGates != "" {
		if err := utilfeature.DefaultMutableFeatureGate.Set(o.featureGates); err != nil {
			return nil, fmt.Errorf("--feature-gates: %w", err)
		}
	}
	return o, nil
}

func knownControllers() []string {
	var names []string
	for name := range controllerpkg.Known() {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func run() error {
	logf.InitLogs() // klog to stderr, contextual logging on
	o, err := parseFlags()
	if err != nil {
		return err
	}

	rootCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-signals
		fmt.Fprintf(os.Stderr, "cm-runner: received %v, shutting down\n", sig)
		cancel()
		<-signals // a second signal: stop waiting
		os.Exit(1)
	}()

	rootCtx = logf.NewContext(rootCtx, logf.Log, "cm-runner")
	log := logf.FromContext(rootCtx)

	ctxFactory, err := controllerpkg.NewContextFactory(rootCtx, controllerpkg.ContextOptions{
		Kubeconfig:         o.kubeconfig,
		KubernetesAPIQPS:   float32(o.qps),
		KubernetesAPIBurst: o.burst,
		Namespace:          o.namespace,
		IssuerOptions: controllerpkg.IssuerOptions{
			ClusterResourceNamespace: o.clusterResourceNamespace,
			// cert-manager's defaults; neither matters to SelfSigned or CA.
			ClusterIssuerAmbientCredentials: true,
			IssuerAmbientCredentials:        false,
		},
		IngressShimOptions: controllerpkg.IngressShimOptions{
			DefaultIssuerKind:  "Issuer",
			DefaultIssuerGroup: "cert-manager.io",
		},
		CertificateOptions: controllerpkg.CertificateOptions{
			EnableOwnerRef: o.enableOwnerRef,
			// cert-manager's default: copy every annotation but those of
			// kubectl, fluxcd and argocd.
			CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
			CertificateRequestMinimumBackoffDuration: o.minBackoff,
			CertificateRequestMaximumBackoffDuration: o.maxBackoff,
		},
		SchedulerOptions: controllerpkg.SchedulerOptions{MaxConcurrentChallenges: 60},
	})
	if err != nil {
		return fmt.Errorf("building the controller context factory: %w", err)
	}
	// The base context: its informer factories are the ones every
	// controller's context shares.
	ctx, err := ctxFactory.Build()
	if err != nil {
		return fmt.Errorf("building the controller context: %w", err)
	}

	// Construct the controllers. Each constructor asks the shared informer
	// factories for the informers it needs, so this must come before the
	// factories are started.
	type named struct {
		name string
		ctrl controllerpkg.Interface
	}
	var ctrls []named
	for _, name := range o.controllers {
		if o.namespace != "" && name == clusterissuerscontroller.ControllerName {
			log.Info("not running the clusterissuers controller: scoped to one namespace", "namespace", o.namespace)
			continue
		}
		ctrl, err := controllerpkg.Known()[name](ctxFactory)
		if err != nil {
			return fmt.Errorf("constructing controller %s: %w", name, err)
		}
		ctrls = append(ctrls, named{name, ctrl})
	}
	log.Info("constructed controllers", "controllers", o.controllers)

	var metricsServer *http.Server
	if o.metricsListenAddress != "" {
		ln, err := net.Listen("tcp", o.metricsListenAddress)
		if err != nil {
			return fmt.Errorf("listening on --metrics-listen-address %s: %w", o.metricsListenAddress, err)
		}
		ctx.Metrics.SetupCertificateCollector(ctx.SharedInformerFactory.Certmanager().V1().Certificates().Lister())
		metricsServer = ctx.Metrics.NewServer(ln)
		fmt.Fprintf(os.Stderr, "cm-runner: metrics on http://%s/metrics\n", ln.Addr())
		go func() {
			if err := metricsServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(err, "metrics server failed")
			}
		}()
	}

	// Start the informers, then the controllers. Each controller waits for
	// its own informers to sync before starting its workers.
	ctx.SharedInformerFactory.Start(rootCtx.Done())
	ctx.KubeSharedInformerFactory.Start(rootCtx.Done())
	ctx.HTTP01ResourceMetadataInformersFactory.Start(rootCtx.Done())

	var wg sync.WaitGroup
	errs := make(chan error, len(ctrls))
	for _, c := range ctrls {
		wg.Go(func() {
			logf.FromContext(rootCtx).Info("starting controller", "controller", c.name)
			if err := c.ctrl.Run(o.workers, rootCtx); err != nil {
				errs <- fmt.Errorf("controller %s: %w", c.name, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// Ready once every informer that was asked for has synced.
	synced := true
	for typ, ok := range ctx.SharedInformerFactory.WaitForCacheSync(rootCtx.Done()) {
		if !ok {
			synced = false
			log.Info("informer cache did not sync", "type", typ.String())
		}
	}
	for typ, ok := range ctx.KubeSharedInformerFactory.WaitForCacheSync(rootCtx.Done()) {
		if !ok {
			synced = false
			log.Info("informer cache did not sync", "type", typ)
		}
	}
	for typ, ok := range ctx.HTTP01ResourceMetadataInformersFactory.WaitForCacheSync(rootCtx.Done()) {
		if !ok {
			synced = false
			log.Info("informer cache did not sync", "type", typ.String())
		}
	}
	if synced && rootCtx.Err() == nil {
		names := make([]string, 0, len(ctrls))
		for _, c := range ctrls {
			names = append(names, c.name)
		}
		slices.Sort(names)
		logf.FlushLogs()
		fmt.Fprintf(os.Stderr, "cm-runner: running controllers %s\n%s\n", strings.Join(names, ","), ReadyLine)
	}

	var runErr error
	select {
	case <-rootCtx.Done():
	case runErr = <-errs:
		cancel()
	case <-done:
		runErr = errors.New("all controllers exited")
		cancel()
	}

	select {
	case <-done:
	case <-time.After(o.shutdownTimeout):
		log.Info("controllers did not stop in time", "timeout", o.shutdownTimeout)
	}
	if metricsServer != nil {
		shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 2*time.Second)
		_ = metricsServer.Shutdown(shutdownCtx)
		cancelShutdown()
	}
	ctx.HTTP01ResourceMetadataInformersFactory.Shutdown()
	ctx.KubeSharedInformerFactory.Shutdown()
	ctx.SharedInformerFactory.Shutdown()
	if runErr == nil {
		fmt.Fprintln(os.Stderr, "cm-runner: stopped")
	}
	return runErr
}
