// vitest globalSetup of the `cluster` project: one real control plane (etcd,
// kube-apiserver, kube-controller-manager) shared by every cluster test file.
// If it cannot start, setup throws with the reason, so the run fails instead of
// silently skipping the tests.
import type { TestProject } from 'vitest/node';
import { type ControlPlane, startControlPlane } from '../../hack/control-plane.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the admin kubeconfig of the shared test control plane. */
    kubeconfig: string;
    /** kubectl binary to run against it. */
    kubectl: string;
    /** Whether kube-controller-manager runs (GC, default ServiceAccounts, Deployments). */
    controllerManager: boolean;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const t0 = Date.now();
  let cp: ControlPlane;
  try {
    cp = await startControlPlane({
      log: (message) => {
        if (process.env.ORIGINGUARD_CP_VERBOSE || /^(building|kept|a port)/.test(message)) {
          console.error(`[control-plane] ${message}`);
        }
      },
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cluster tests need a test control plane, and it could not start:\n${reason}`);
  }
  if (!cp.controllerManager) {
    console.warn('[control-plane] no kube-controller-manager binary: tests that need controllers will fail');
  }
  if (process.env.ORIGINGUARD_CP_VERBOSE) {
    console.error(
      `[control-plane] ready in ${Date.now() - t0} ms at ${cp.server}, kubeconfig ${cp.kubeconfig}`,
    );
  }
  project.provide('kubeconfig', cp.kubeconfig);
  project.provide('kubectl', cp.binaries.kubectl);
  project.provide('controllerManager', cp.controllerManager);
  return () => cp.stop();
}
