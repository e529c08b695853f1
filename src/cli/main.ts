// Command-line entry; built by the data and trainer work (issues 6 and 8).
export {};
