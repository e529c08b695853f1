// Model host process entry; built by the trainer work (issue 8).
export {};
