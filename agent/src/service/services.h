// The agent API, protocol-neutral: each Register* function adds the handlers of one
// group of methods to the Dispatcher that both the gRPC and the ttrpc servers call.
//
// Handlers validate the request where it enters, convert protobuf to plain C++ structs,
// call into the sandbox/runtime/storage/network layers, and map failures to status
// codes (INVALID_ARGUMENT for a bad request, NOT_FOUND for an unknown id, ...).
#pragma once

#include "init/config.h"
#include "rpc/dispatcher.h"

namespace kata {

class OomEvents;
class PolicyStore;
class Sandbox;
class Storages;

struct ServiceEnv {
  const AgentConfig* config = nullptr;
  Sandbox* sandbox = nullptr;
  bool is_pid1 = false;
  OomEvents* oom_events = nullptr;  // GetOOMEvent's queue
  Storages* storages = nullptr;     // storages and devices, reference-counted
  PolicyStore* policy = nullptr;    // the API policy (SetPolicy installs one)
};

inline constexpr char kAgentVersion[] = KATA_AGENT_VERSION;

// Every service and method of the API, declared so unregistered methods answer UNIMPLEMENTED.
void DeclareApi(Dispatcher& d);

void RegisterHealthService(Dispatcher& d, ServiceEnv& env);     // grpc.Health
void RegisterGuestService(Dispatcher& d, ServiceEnv& env);      // GetGuestDetails, ...
void RegisterContainerService(Dispatcher& d, ServiceEnv& env);  // containers and processes
void RegisterSandboxService(Dispatcher& d, ServiceEnv& env);    // CreateSandbox, DestroySandbox
void RegisterEventsService(Dispatcher& d, ServiceEnv& env);     // GetOOMEvent
void RegisterNetworkService(Dispatcher& d, ServiceEnv& env);    // interfaces, routes, ARP, iptables
void RegisterResourcesService(Dispatcher& d,
                              ServiceEnv& env);               // Update/Stats/Pause/ResumeContainer
void RegisterStorageService(Dispatcher& d, ServiceEnv& env);  // CopyFile, volumes, swap
void RegisterPolicyService(Dispatcher& d, ServiceEnv& env);   // SetPolicy

}  // namespace kata
