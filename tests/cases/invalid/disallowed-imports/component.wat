(component
  (import "wasi:http/incoming-handler@0.2.0" (instance))
  (import "evil:backdoor/shell@1.0.0" (instance))
  (import "wasi:cli/environment@0.2.0" (instance))
)
