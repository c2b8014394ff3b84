// The product version, from package.json (bundled into dist by esbuild): the
// default sidecar image tag, the `injected` annotation and reports' sidecarVersion.
import pkg from '../package.json' with { type: 'json' };

export const PRODUCT_VERSION: string = pkg.version;
