"""CloudFront Functions: the viewer-stage JavaScript functions CloudFront runs beside
Lambda@Edge, with their KeyValueStores (docs/functions.md).

``stores``: function code and KeyValueStore files, read and checked; ``event``: the event a
function gets and what its result becomes; ``runner``: the Node.js runtime process
(``runtime.mjs``) that runs them; ``testing``: ``edgeproxy test-function``."""
