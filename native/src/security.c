/* Capabilities and the default seccomp filter, in the cloned child, after the mounts and the
 * user change, just before exec. */
#include "internal.h"

#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int capget_raw(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	return (int)syscall(SYS_capget, &h, d);
}

static int capset_raw(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = {
		{ .effective = (uint32_t)eff, .permitted = (uint32_t)perm, .inheritable = (uint32_t)inh },
		{ .effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32), .inheritable = (uint32_t)(inh >> 32) },
	};
	return (int)syscall(SYS_capset, &h, d);
}

/* Keeps exactly `keep` in all five sets. The process may have changed uid with keepcaps on, so
 * its effective set can be empty: it is raised to the permitted set first, because dropping from
 * the bounding set needs CAP_SETPCAP. */
int op_caps(uint64_t keep)
{
	struct __user_cap_data_struct d[2];
	uint64_t perm;
	int c;
	if (capget_raw(d) < 0) return -1;
	perm = (uint64_t)d[0].permitted | ((uint64_t)d[1].permitted << 32);
	if (capset_raw(perm, perm, 0) < 0) return -1;
	for (c = 0; c < 64; c++) {
		if (keep & (1ull << c)) continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) { if (errno == EINVAL) break; return -1; }
	}
	if (capset_raw(keep & perm, keep & perm, keep & perm) < 0) return -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return -1;
	for (c = 0; c < 64; c++) {
		if (!(keep & perm & (1ull << c))) continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EINVAL) return -1;
	}
	return prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
}

/* The default filter: Docker's default profile refuses these system calls to a container without
 * CAP_SYS_ADMIN; they manage the host (modules, clocks, swap, reboot), escape the sandbox's view
 * (mount, namespaces, pivot_root) or widen the kernel's attack surface (bpf, keyctl, userfaultfd).
 * Refused calls fail with EPERM; clone3 fails with ENOSYS so that libc falls back to clone, whose
 * namespace flags are then checked; any other ABI (x32, i386) is killed. */
static const int denied[] = {
	SYS_mount, SYS_umount2, SYS_pivot_root, SYS_unshare, SYS_setns, SYS_bpf, SYS_keyctl, SYS_add_key, SYS_request_key,
	SYS_kexec_load, SYS_kexec_file_load, SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_reboot, SYS_swapon,
	SYS_swapoff, SYS_acct, SYS_settimeofday, SYS_clock_settime, SYS_clock_adjtime, SYS_adjtimex, SYS_iopl, SYS_ioperm,
	SYS_open_by_handle_at, SYS_name_to_handle_at, SYS_perf_event_open, SYS_userfaultfd, SYS_lookup_dcookie, SYS_quotactl,
	SYS_nfsservctl, SYS_uselib, SYS_ustat, SYS_sysfs, SYS__sysctl, SYS_vhangup, SYS_create_module, SYS_get_kernel_syms,
	SYS_query_module, SYS_move_pages, SYS_mbind, SYS_set_mempolicy, SYS_get_mempolicy, SYS_fsopen, SYS_fsconfig,
	SYS_fsmount, SYS_fspick, SYS_move_mount, SYS_open_tree, SYS_mount_setattr, SYS_syslog,
};

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)
#define N_DENIED ((int)(sizeof denied / sizeof denied[0]))

int op_seccomp(void)
{
	static struct sock_filter f[8 + 2 * N_DENIED + 8];
	int n = 0, i;
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	/* x32 system calls share the arch value; their numbers have bit 30 set. */
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	for (i = 0; i < N_DENIED; i++) {
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)denied[i], 0, 1);
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	}
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = (unsigned short)n, .filter = f };
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}
