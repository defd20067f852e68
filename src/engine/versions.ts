// The native engine's versions, for `sandbox version`: where libsbx is, the ABI it was loaded
// with (loadLibSbx refuses any other), and the libseccomp it compiles filters with. Runs in the CLI
// process as the caller; loading the library changes nothing.
import { ABI_VERSION } from '../ffi/generated/abi';
import { libraryPath, loadLibSbx } from '../ffi/libsbx';

export function engineVersions(): { library: string; abi: number; libseccomp: string } {
  const lib = loadLibSbx();
  return { library: libraryPath(), abi: ABI_VERSION, libseccomp: lib.seccompVersion() };
}
