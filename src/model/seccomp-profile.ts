// The shape of a seccomp profile file as Docker, OCI and Podman write it: types only, shared by
// the reader (seccomp.ts) and the default profile (seccomp-default.ts), which depend on it and not
// on each other.

// The profile, as its JSON holds it

/** One comparison on a syscall argument (OCI `LinuxSeccompArg`). */
export interface SeccompArg {
  index: number;
  value: number | bigint;
  /** Only SCMP_CMP_MASKED_EQ uses it: `(arg & value) == valueTwo`. */
  valueTwo?: number | bigint;
  op: string;
}

/** moby's conditions on a rule: `includes` needs all of them, `excludes` drops the rule on any. */
export interface SeccompFilterCond {
  /** Capability names, as moby writes them (CAP_SYS_ADMIN); SYS_ADMIN is accepted too. */
  caps?: string[];
  /** moby's architecture names: amd64, x86, x32, arm, arm64, s390x, ppc64le, riscv64, ... */
  arches?: string[];
  /** "major.minor", e.g. "4.8". */
  minKernel?: string;
}

export interface SeccompRule {
  names?: string[];
  /** Docker's old spelling: one name per rule. */
  name?: string;
  action: string;
  errnoRet?: number;
  /** Podman (containers/common): the errno by name (EPERM) or as decimal text; wins over errnoRet. */
  errno?: string;
  args?: SeccompArg[];
  includes?: SeccompFilterCond;
  excludes?: SeccompFilterCond;
  comment?: string;
}

/** A Docker/OCI seccomp profile, as its JSON holds it (both Docker's `names`/`name` and OCI's field spellings, `archMap` and `architectures`). */
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  /** Podman (containers/common): the default errno by name or decimal text; wins over defaultErrnoRet. */
  defaultErrno?: string;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  /** seccomp(2) filter flags (SECCOMP_FILTER_FLAG_*); read and kept, not applied by the filter program. */
  flags?: string[];
  /** Only meaningful with SCMP_ACT_NOTIFY, which sandbox does not support; read and kept. */
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: SeccompRule[];
}
