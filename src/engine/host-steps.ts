// The steps the CLI applies on the host, as root, while the cloned child waits: one handler per
// kind, each recording its undo (typed data, host/undo.ts) in the sandbox's state just before it
// changes something, so that a failure at any point, `down` and gc revert it in reverse through
// one function and leave nothing behind. The mapped type makes the table cover every host kind;
// the compiler checks each handler's arguments.
import type { HostKind, HostStep } from '../plan/steps';
import { closeSync, existsSync, mkdirSync, openSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { LibSbx } from '../ffi/libsbx';
import type { Store } from '../image/store';
import { removeTree } from '../image/owners';
import { createVolume, readVolume } from '../image/volumes';
import { findStep } from '../plan/steps';
import type { Ids } from '../host/users';
import type { IdMap } from '../model/types';
import type { HostFeatures, Plan, Step, StepOf } from '../plan/types';
import type { Cgroup } from '../host/cgroup';
import { ownerAlive, readOwner, selfOwner, withLock } from '../host/lock';
import { createVeth, enableForwarding, hostsFile, leaseAddress, natTable, nft, portRules, resolvConf, type PortRule } from '../host/network';
import { startPasta, startSlirp4netns } from '../host/rootless-net';
import { ensureStateRoot, nameLock, readState, sandboxPids } from '../host/state';
import { reclaimLocked } from '../host/teardown';
import type { UndoList } from '../host/undo';
import { startEgressStep, wallScript, type EgressRun } from './egress';
import { ipv6OffInside } from '../host/egress';
import { makeInitLayer } from './init-layer';

/** What a run's host steps share: made by the engine before the first, filled in as they go. */
export interface HostContext {
  plan: Plan;
  host: HostFeatures;
  lib: LibSbx;
  /** The sandbox's state folder, and the new root inside it. */
  state: string;
  rootDir: string;
  cgroup: Cgroup;
  store: Store;
  /** An image's private upper layer, beside the store; its layers, bottom first. */
  container: string;
  layers: readonly string[];
  imageReadOnly: boolean;
  /** What reverts each change, replayed in reverse when the run fails or ends (not for a detached
   * sandbox that runs: `down` replays what it recorded in the state folder). */
  undo: UndoList;
  /** The host's names of this sandbox's private network, as the plan names them (in the undo of
   * net.veth and net.nat): the veth pair's host end and the nftables table. */
  names: { veth: string; table: string };
  /** The ports reserved by the preflight, in the order of the plan's port steps, with the CLI's hold on each. */
  ports: { step: StepOf<'net.port'>; rule: PortRule; hold: { fd: number; close(): Promise<void> } }[];
  /** Leased by state.create for a private network; a rootless one's, from its user-mode stack. */
  address?: string;
  /** A rootless private network's name servers, from its user-mode stack. */
  dns?: string[];
  /** A rootless private network's gateway, from its user-mode stack (a refused class under egress). */
  gateway?: string;
  /** Set once the child is cloned; holder: the process that runs the restart policy and holds the
   * sandbox's namespaces (this CLI, or the supervisor when detached). */
  child?: { pid: number; bornInCgroup: boolean; holder: number };
  /** The sandbox's user, group and groups as numbers (the preflight resolved them): an empty volume's owner. */
  ids?: Ids;
  /** The bind sources that are files, not folders (preflight's fileSources): a file is their mount point. */
  fileSources?: ReadonlySet<string>;
  /** Test-only: this step is applied wrongly, for the attestation to catch (SANDBOX_TEST_CORRUPT). */
  corruptAt?: string;
  /** network.egress: the run's nonce, group, mark and classes, the wall as loaded, sbx-egress's record. */
  egress?: EgressRun;
}

/** The kinds the host applies are the table's in plan/steps.ts: a kind placed there needs its handler here. */
export type { HostKind };
type Handlers = { [K in HostKind]: (ctx: HostContext, step: StepOf<K>) => void | Promise<void> };

const childOf = (ctx: HostContext) => {
  if (!ctx.child) throw new Error('internal error: a host step that needs the child ran before the clone');
  return ctx.child;
};
const addressOf = (ctx: HostContext) => {
  if (!ctx.address) throw new Error('internal error: no address was leased for the private network');
  return ctx.address;
};
/** Test-only: another value than the plan's, that the kernel takes (the attestation must see it). */
const corruptValue = (v: string) => (/^[0-9]+$/.test(v) ? String(Number(v) * 2) : v === 'max' ? '1000000' : v);
const idMap = (m: IdMap[]) => m.map((x) => `${x.container} ${x.host} ${x.size}\n`).join('');

const HANDLERS: Handlers = {
  'state.create': async (ctx, s) => {
    const { plan, host, state } = ctx;
    ensureStateRoot(host);
    // Under the name's lock, so that of two `up`s of one name exactly one wins; the folder names
    // its owner (this CLI) from its first moment, so that gc leaves a starting sandbox be.
    await withLock(nameLock(host, plan.name), async () => {
      try { mkdirSync(state); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // A folder left by a crashed run (the CLI killed with -9) is recognised, not trusted: with
        // no live process in its cgroup and no live owner, what that run made on the host is removed first.
        const owner = readOwner(join(state, 'owner'));
        const running = sandboxPids(host, plan.name, readState(state)).length;
        if (running || ownerAlive(owner)) throw new Error(`a sandbox named ${plan.name} is already ${running ? 'running' : `being started (by process ${owner!.split(' ')[0]})`}; stop it first, or pick another name with --name`);
        await reclaimLocked(host, plan.name);
        mkdirSync(state);
      }
      writeFileSync(join(state, 'owner'), selfOwner());
    });
    // The folder keeps the undo list from here on; its files (lease, network files, state.json,
    // the list itself) and the root mount point go with it, if it is empty then.
    ctx.undo.keepIn(state);
    ctx.undo.record(s.id, { kind: 'state.remove', args: { path: state } });
    const veth = plan.steps.find((x) => x.kind === 'net.veth');
    if (veth) ctx.address = await leaseAddress(host.stateRoot, state, veth.args.subnet);
    mkdirSync(ctx.rootDir);
  },
  'rootfs.host': () => undefined,
  'rootfs.dir': (_ctx, s) => {
    if (!statSync(s.args.path).isDirectory()) throw new Error(`${s.args.path} is not a folder`);
  },
  'rootfs.image': (ctx, s) => {
    for (const l of ctx.layers) if (!statSync(l).isDirectory()) throw new Error(`the image's layer ${l} is missing from the store; pull the image again`);
    // overlayfs cannot take an upper layer that is itself on overlayfs (EINVAL at the mount).
    if (!ctx.imageReadOnly && statfsSync(ctx.store.root).type === 0x794c7630) throw new Error(`the image store ${ctx.store.root} is on overlayfs, which cannot hold a sandbox's upper layer; set SANDBOX_STORE to a folder on another file system, or use security.read_only`);
    // Rootless, what the sandbox wrote there may belong to the caller's subordinate ids:
    // removeTree removes it inside the caller's user namespace where the caller itself cannot.
    ctx.undo.record(s.id, { kind: 'upper.remove', args: { path: ctx.container } });
    removeTree(ctx.container);
    if (ctx.imageReadOnly) {
      if (!ctx.fileSources) throw new Error('internal error: the image step ran before the preflight found the bind sources');
      makeInitLayer(ctx.plan, ctx.layers, join(ctx.container, 'init'), ctx.fileSources);
    }
    else {
      mkdirSync(join(ctx.container, 'upper'), { recursive: true, mode: 0o755 });
      mkdirSync(join(ctx.container, 'work'));
    }
  },
  'image.note': () => undefined,
  'path.placeholder': (ctx, s) => {
    const { path, type } = s.args;
    // Made only where nothing is (the host may have made it since the plan); recorded first, so
    // that a crash between the two leaves an undo that finds nothing or the empty placeholder.
    if (existsSync(path)) return;
    ctx.undo.record(s.id, { kind: 'path.placeholder.remove', args: { path, type } });
    if (type === 'dir') mkdirSync(path, { mode: 0o700 });
    else closeSync(openSync(path, 'wx', 0o600));
  },
  'volume.create': (ctx, s) => {
    const a = s.args;
    const root = dirname(a.path);
    if (a.external) {
      // Never made, seeded nor removed by sandbox: it must be there, as the plan was told.
      if (!readVolume(a.name, root)) throw new Error(`the external volume ${a.name} does not exist (sandbox volume ls lists them); create it by running the file that owns it, or remove \`external: true\``);
      return;
    }
    if (!ctx.ids) throw new Error('internal error: a volume step ran before the preflight resolved the ids');
    const idmap = findStep(ctx.plan.steps, 'idmap');
    const image = findStep(ctx.plan.steps, 'rootfs.image');
    const { created } = createVolume({
      name: a.name, root, uid: ctx.ids.uid, gid: ctx.ids.gid, rootless: !ctx.host.root,
      seed: a.seed === 'image' && ctx.layers.length ? { layers: ctx.layers, image: image?.args.ref ?? '', target: a.target } : undefined,
      ...(ctx.host.root && idmap ? { uidMap: idmap.args.uid, gidMap: idmap.args.gid } : {}),
      ...(a.anonymous ? { anonymous: { sandbox: ctx.plan.name, target: a.target } } : {}),
    });
    // Only what this run made goes if the run fails; a volume that existed keeps its data.
    // (An entry made after the volume: one that existed must not be recorded. UndoList.commandRuns
    // takes it off the list once the command runs.)
    if (created) ctx.undo.record(s.id, { kind: 'volume.remove-new', args: { name: a.name, root } });
  },
  'cgroup.create': async (ctx, s) => {
    const { cgroup } = ctx;
    if (cgroup.exists()) {
      if (cgroup.pids().length) throw new Error(`a sandbox named ${ctx.plan.name} is already running (cgroup ${cgroup.path} has processes); stop it first`);
      await cgroup.remove();
    }
    const keep = cgroup.existingAncestor();
    ctx.undo.record(s.id, { kind: 'cgroup.remove', args: { path: s.args.path, ...(keep ? { keep } : {}) } });
    cgroup.create();
  },
  'cgroup.set': (ctx, s) => ctx.cgroup.set(s.args.controller, s.args.file, ctx.corruptAt === s.id ? corruptValue(s.args.value) : s.args.value),
  // Made by the clone itself: reported in order, nothing more to do.
  'ns.new': () => undefined,
  'ns.host': () => undefined,
  'cgroup.attach': (ctx) => {
    // On v2 the child was born in its cgroup (clone3); elsewhere it is moved there now.
    const c = childOf(ctx);
    if (!c.bornInCgroup) ctx.cgroup.attach(c.pid);
  },
  'idmap': async (ctx, s) => {
    const { pid } = childOf(ctx);
    if (s.args.tool === 'newidmap') {
      // Rootless, more than the caller's own id: the setuid helpers check each range against
      // /etc/subuid and /etc/subgid and write the maps for us; the two run at once (7-9 ms each).
      const rl = ctx.host.rootless;
      const triples = (m: IdMap[]) => m.flatMap((x) => [String(x.container), String(x.host), String(x.size)]);
      await Promise.all([runHelper(rl?.newuidmap ?? 'newuidmap', [String(pid), ...triples(s.args.uid)]), runHelper(rl?.newgidmap ?? 'newgidmap', [String(pid), ...triples(s.args.gid)])]);
      return;
    }
    writeFileSync(`/proc/${pid}/uid_map`, idMap(s.args.uid));
    // Without root the kernel takes a gid map only once setgroups is denied in the namespace.
    if (ctx.host.rootless) writeFileSync(`/proc/${pid}/setgroups`, 'deny');
    writeFileSync(`/proc/${pid}/gid_map`, idMap(s.args.gid));
  },
  'net.veth': async (ctx, s) => {
    const hostIf = ctx.names.veth;
    if (!hostIf) throw new Error('internal error: the plan names no host end for the veth pair');
    ctx.undo.record(s.id, { kind: 'net.veth.remove', args: { interface: hostIf } });
    createVeth(childOf(ctx).pid, hostIf, s.args.gateway, addressOf(ctx), ctx.ports.length > 0, s.args.mtu);
    ctx.undo.record(s.id, { kind: 'net.forwarding.restore', args: { state: ctx.state } });
    await enableForwarding(ctx.host.stateRoot);
  },
  'net.nat': async (ctx, s) => {
    const { table, veth } = ctx.names;
    if (!table) throw new Error('internal error: the plan names no nftables table');
    // With egress, the wall goes in the same transaction: the sandbox is never forwarded without it.
    const wall = findStep(ctx.plan.steps, 'net.egress.wall');
    const wallText = wall ? await wallScript(ctx, wall) : '';
    ctx.undo.record(s.id, { kind: 'net.nat.remove', args: { subnet: s.args.subnet, table } });
    if (wall) ctx.undo.record(wall.id, { kind: 'net.egress.wall.remove', args: { table: wall.args.table } });
    nft(natTable(table, veth, addressOf(ctx)) + wallText);
  },
  // The rules are applied by sbx-egress and the wall; the attestation reads them back.
  'net.egress.rule': () => undefined,
  'net.egress.default': () => undefined,
  'net.egress.wall': (ctx) => { if (!ctx.egress?.wall) throw new Error('internal error: the egress wall was not loaded with the NAT table'); },
  'net.egress.start': (ctx, s) => startEgressStep(ctx, s, childOf(ctx).pid, childOf(ctx).holder),
  'net.usernet': async (ctx, s) => {
    // Rootless: the tool binds the published ports itself, so the preflight's holds on them are
    // let go just before it starts; it runs as the caller and outlives this CLI for a detached
    // sandbox (its own watcher ends it with the sandbox, and `down` by its record).
    const mine = ctx.ports.filter((p) => p.step.args.path === s.args.tool);
    for (const p of mine) await p.hold.close();
    const start = s.args.tool === 'pasta' ? startPasta : startSlirp4netns;
    // The tool's processes are recorded in the state folder as it starts them (rootless-net.ts).
    ctx.undo.record(s.id, { kind: 'net.usernet.stop', args: { tool: s.args.tool, state: ctx.state } });
    const n = await start({ pid: childOf(ctx).pid, holder: childOf(ctx).holder, ports: mine.map((p) => p.rule), mtu: s.args.mtu, stateDir: ctx.state, binary: s.args.binary, egress: !!s.args.egress });
    ctx.gateway = n.gateway;
    // Under egress the sandbox has no IPv6 at all (the wall inside is IPv4's; the attestation checks).
    if (s.args.egress) ipv6OffInside(childOf(ctx).pid);
    ctx.address = n.address;
    ctx.dns = n.dns;
  },
  'net.port': async (ctx, s) => {
    // A rootless port is published by its user-mode stack (net.usernet), with the others.
    if (s.args.path === 'pasta' || s.args.path === 'slirp4netns') return;
    // Kernel maps go in with the first port step, in one nft transaction (the table goes with net.nat's undo).
    if (ctx.ports[0]?.step === s) {
      const kernel = ctx.ports.filter((p) => p.step.args.path === 'kernel').map((p) => p.rule);
      if (kernel.length) nft(portRules(ctx.names.table, addressOf(ctx), kernel));
    }
    // A user-space map: the CLI's hold on the port passes to a forwarder thread.
    const p = ctx.ports.find((x) => x.step === s);
    if (s.args.path === 'userspace' && p) {
      await p.hold.close();
      const f = ctx.lib.forward(p.rule.protocol === 'udp', p.rule.hostIp || '0.0.0.0', p.rule.hostPort, addressOf(ctx), p.rule.containerPort, -1);
      ctx.undo.local(() => f.stop());
    }
  },
  'net.hosts': (ctx, s) => {
    const hostname = ctx.plan.steps.find((x) => x.kind === 'hostname')?.args.hostname ?? ctx.plan.name;
    writeFileSync(join(ctx.state, 'hosts'), hostsFile(hostname, ctx.address, s.args.extra));
  },
  // A rootless stack names its own resolver (slirp4netns' 10.0.2.3; pasta's is the host's).
  'net.resolv': (ctx, s) => writeFileSync(join(ctx.state, 'resolv.conf'), resolvConf(s.args.servers.length ? s.args.servers : ctx.dns ?? [], s.args.options)),
};

/** A setuid helper run to completion; its own message (newuidmap names the range it refused) on failure. */
function runHelper(file: string, args: string[]): Promise<void> {
  const { execFile } = require('node:child_process') as typeof import('node:child_process');
  return new Promise((resolve, reject) => execFile(file, args, { encoding: 'utf8' }, (e, _out, err) => {
    if (!e) return resolve();
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return reject(new Error(`${file} could not be run (${code}); install Debian's uidmap package`));
    reject(new Error(`${file} ${args.join(' ')} failed: ${(err || `exit ${code}`).trim()}; check your ranges in /etc/subuid and /etc/subgid`));
  }));
}

/** A step the CLI applies: its kind has a handler here (and compile placed it on the host). */
export function isHostStep(s: Step): s is HostStep {
  return s.side === 'host' && Object.hasOwn(HANDLERS, s.kind);
}

export function applyHostStep<K extends HostKind>(ctx: HostContext, step: StepOf<K>): void | Promise<void> {
  return HANDLERS[step.kind](ctx, step);
}
