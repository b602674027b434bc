// ttrpc-interop: a client built on containerd's own ttrpc library (Debian's
// golang-github-containerd-ttrpc-dev), used by tests/host/test_ttrpc.py to check that the
// agent's ttrpc server speaks the protocol as containerd implements it.
//
// The few agent API messages it needs are written out by hand below (gogo/protobuf
// marshals plain structs from their field tags), with the field numbers of
// agent/protocols/{agent,health}.proto.
//
// Build (GOPATH mode, no network):
//
//	GO111MODULE=off GOPATH=$tmp:/usr/share/gocode go build -o $tmp/ttrpc-interop .
//
// Usage: ttrpc-interop -sock PATH COMMAND [flags]; every command prints one JSON object.
//
//	check | version | guest-details
//	call -service S -method M [-payload-hex H] [-timeout-nano N]
//	concurrent -n 50 -block-timeout 2s
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/status"
)

// ---- hand-written agent API messages ----

type CheckRequest struct {
	Service string `protobuf:"bytes,1,opt,name=service,proto3" json:"service"`
}

func (m *CheckRequest) Reset()         { *m = CheckRequest{} }
func (m *CheckRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*CheckRequest) ProtoMessage()    {}

type HealthCheckResponse struct {
	Status int32 `protobuf:"varint,1,opt,name=status,proto3" json:"status"`
}

func (m *HealthCheckResponse) Reset()         { *m = HealthCheckResponse{} }
func (m *HealthCheckResponse) String() string { return fmt.Sprintf("%+v", *m) }
func (*HealthCheckResponse) ProtoMessage()    {}

type VersionCheckResponse struct {
	GrpcVersion  string `protobuf:"bytes,1,opt,name=grpc_version,proto3" json:"grpc_version"`
	AgentVersion string `protobuf:"bytes,2,opt,name=agent_version,proto3" json:"agent_version"`
}

func (m *VersionCheckResponse) Reset()         { *m = VersionCheckResponse{} }
func (m *VersionCheckResponse) String() string { return fmt.Sprintf("%+v", *m) }
func (*VersionCheckResponse) ProtoMessage()    {}

type GuestDetailsRequest struct {
	MemBlockSize    bool `protobuf:"varint,1,opt,name=mem_block_size,proto3" json:"mem_block_size"`
	MemHotplugProbe bool `protobuf:"varint,2,opt,name=mem_hotplug_probe,proto3" json:"mem_hotplug_probe"`
}

func (m *GuestDetailsRequest) Reset()         { *m = GuestDetailsRequest{} }
func (m *GuestDetailsRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*GuestDetailsRequest) ProtoMessage()    {}

type AgentDetails struct {
	Version         string   `protobuf:"bytes,1,opt,name=version,proto3" json:"version"`
	InitDaemon      bool     `protobuf:"varint,2,opt,name=init_daemon,proto3" json:"init_daemon"`
	DeviceHandlers  []string `protobuf:"bytes,3,rep,name=device_handlers,proto3" json:"device_handlers"`
	StorageHandlers []string `protobuf:"bytes,4,rep,name=storage_handlers,proto3" json:"storage_handlers"`
	SupportsSeccomp bool     `protobuf:"varint,5,opt,name=supports_seccomp,proto3" json:"supports_seccomp"`
	ExtraFeatures   []string `protobuf:"bytes,6,rep,name=extra_features,proto3" json:"extra_features"`
}

func (m *AgentDetails) Reset()         { *m = AgentDetails{} }
func (m *AgentDetails) String() string { return fmt.Sprintf("%+v", *m) }
func (*AgentDetails) ProtoMessage()    {}

type GuestDetailsResponse struct {
	MemBlockSizeBytes      uint64        `protobuf:"varint,1,opt,name=mem_block_size_bytes,proto3" json:"mem_block_size_bytes"`
	AgentDetails           *AgentDetails `protobuf:"bytes,2,opt,name=agent_details,proto3" json:"agent_details"`
	SupportMemHotplugProbe bool          `protobuf:"varint,3,opt,name=support_mem_hotplug_probe,proto3" json:"support_mem_hotplug_probe"`
}

func (m *GuestDetailsResponse) Reset()         { *m = GuestDetailsResponse{} }
func (m *GuestDetailsResponse) String() string { return fmt.Sprintf("%+v", *m) }
func (*GuestDetailsResponse) ProtoMessage()    {}

type GetOOMEventRequest struct{}

func (m *GetOOMEventRequest) Reset()         { *m = GetOOMEventRequest{} }
func (m *GetOOMEventRequest) String() string { return "{}" }
func (*GetOOMEventRequest) ProtoMessage()    {}

type OOMEvent struct {
	ContainerId string `protobuf:"bytes,1,opt,name=container_id,proto3" json:"container_id"`
}

func (m *OOMEvent) Reset()         { *m = OOMEvent{} }
func (m *OOMEvent) String() string { return fmt.Sprintf("%+v", *m) }
func (*OOMEvent) ProtoMessage()    {}

// Raw carries already-serialized bytes through the library's codec untouched.
type Raw struct{ B []byte }

func (m *Raw) Reset()                   { m.B = nil }
func (m *Raw) String() string           { return hex.EncodeToString(m.B) }
func (*Raw) ProtoMessage()              {}
func (m *Raw) Marshal() ([]byte, error) { return m.B, nil }
func (m *Raw) Unmarshal(b []byte) error { m.B = append([]byte(nil), b...); return nil }

// ---- plumbing ----

const (
	agentService  = "grpc.AgentService"
	healthService = "grpc.Health"
)

type timeoutKey struct{}

// withServerTimeout makes the next call send timeout_nano = d while the local context has
// no deadline, so the answer seen is the server's, not the library's own ctx.Err().
func withServerTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, timeoutKey{}, d)
}

func timeoutInterceptor(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response,
	info *ttrpc.UnaryClientInfo, invoker ttrpc.Invoker) error {
	if d, ok := ctx.Value(timeoutKey{}).(time.Duration); ok {
		req.TimeoutNano = d.Nanoseconds()
	}
	return invoker(ctx, req, resp)
}

func out(v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		fail(err)
	}
	fmt.Println(string(b))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ttrpc-interop:", err)
	os.Exit(1)
}

type callResult struct {
	Code    int32  `json:"code"`
	CodeStr string `json:"code_name"`
	Message string `json:"message"`
	Ms      int64  `json:"ms"`
}

func result(err error, start time.Time) callResult {
	st, _ := status.FromError(err)
	return callResult{Code: int32(st.Code()), CodeStr: st.Code().String(), Message: st.Message(),
		Ms: time.Since(start).Milliseconds()}
}

func main() {
	sock := flag.String("sock", "", "the agent's unix socket")
	flag.Parse()
	if *sock == "" || flag.NArg() < 1 {
		fail(fmt.Errorf("usage: ttrpc-interop -sock PATH COMMAND [flags]"))
	}
	conn, err := net.Dial("unix", *sock)
	if err != nil {
		fail(err)
	}
	client := ttrpc.NewClient(conn, ttrpc.WithUnaryClientInterceptor(timeoutInterceptor))
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cmd, args := flag.Arg(0), flag.Args()[1:]
	switch cmd {
	case "check":
		var resp HealthCheckResponse
		if err := client.Call(ctx, healthService, "Check", &CheckRequest{}, &resp); err != nil {
			fail(err)
		}
		out(resp)
	case "version":
		var resp VersionCheckResponse
		if err := client.Call(ctx, healthService, "Version", &CheckRequest{}, &resp); err != nil {
			fail(err)
		}
		out(resp)
	case "guest-details":
		var resp GuestDetailsResponse
		if err := client.Call(ctx, agentService, "GetGuestDetails", &GuestDetailsRequest{MemBlockSize: true}, &resp); err != nil {
			fail(err)
		}
		out(resp)
	case "call":
		fs := flag.NewFlagSet("call", flag.ExitOnError)
		service := fs.String("service", agentService, "")
		method := fs.String("method", "", "")
		payloadHex := fs.String("payload-hex", "", "")
		timeout := fs.Duration("timeout", 0, "sent as timeout_nano (0: none)")
		fs.Parse(args)
		payload, err := hex.DecodeString(*payloadHex)
		if err != nil {
			fail(err)
		}
		cctx := ctx
		if *timeout > 0 {
			cctx = withServerTimeout(ctx, *timeout)
		}
		var resp Raw
		start := time.Now()
		err = client.Call(cctx, *service, *method, &Raw{B: payload}, &resp)
		r := result(err, start)
		out(struct {
			callResult
			PayloadHex string `json:"payload_hex"`
		}{r, hex.EncodeToString(resp.B)})
	case "concurrent":
		// One GetOOMEvent that blocks until its deadline, and n Checks beside it, all on this
		// one connection.
		fs := flag.NewFlagSet("concurrent", flag.ExitOnError)
		n := fs.Int("n", 50, "concurrent Check calls")
		block := fs.Duration("block-timeout", 2*time.Second, "GetOOMEvent's timeout_nano")
		fs.Parse(args)
		start := time.Now()
		oomDone := make(chan callResult, 1)
		go func() {
			var ev OOMEvent
			err := client.Call(withServerTimeout(ctx, *block), agentService, "GetOOMEvent", &GetOOMEventRequest{}, &ev)
			oomDone <- result(err, start)
		}()
		// Let the long-poll reach the agent first, so the Checks queue up behind it if the
		// server served calls one at a time.
		time.Sleep(100 * time.Millisecond)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, failed := 0, []string{}
		var lastMs int64
		for i := 0; i < *n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var resp HealthCheckResponse
				err := client.Call(ctx, healthService, "Check", &CheckRequest{}, &resp)
				mu.Lock()
				defer mu.Unlock()
				if err == nil && resp.Status == 1 {
					ok++
				} else {
					failed = append(failed, fmt.Sprint(err, resp.Status))
				}
				if ms := time.Since(start).Milliseconds(); ms > lastMs {
					lastMs = ms
				}
			}()
		}
		wg.Wait()
		checksDoneMs := time.Since(start).Milliseconds()
		oomStillBlocked := len(oomDone) == 0
		oom := <-oomDone
		out(map[string]interface{}{
			"checks_ok": ok, "checks_failed": failed, "checks_done_ms": checksDoneMs,
			"oom_blocked_while_checks_ran": oomStillBlocked, "oom": oom,
		})
	default:
		fail(fmt.Errorf("unknown command %q", cmd))
	}
}
