import { describe, expect, it } from 'vitest';
import { describeExit, explainFailure, exitStatus } from '../../src/runner/log-lines.js';

/** Tails of real llama-server runs (v0.5.0): the line that says why comes before several echoes of it. */
const TRUNCATED = [
  "0.00.007.854 I srv    load_model: loading model '/m/tiny-broken.gguf'",
  "0.00.008.127 E llama_model_load: error loading model: tensor 'output.weight' data is not within the file bounds, model is corrupted or incomplete",
  '0.00.008.201 E llama_model_load_from_file_impl: failed to load model',
  '0.00.009.809 E common_fit_params: encountered an error while trying to fit params to free device memory: failed to load model',
  "0.00.009.910 E llama_model_load: error loading model: tensor 'output.weight' data is not within the file bounds, model is corrupted or incomplete",
  '0.00.009.924 E llama_model_load_from_file_impl: failed to load model',
  "0.00.009.938 E cmn  common_init_: failed to load model '/m/tiny-broken.gguf'",
  "0.00.009.952 E srv    load_model: failed to load model, '/m/tiny-broken.gguf'",
  '0.00.009.966 I srv    operator(): operator(): cleaning up before exit...',
  '0.00.010.262 E srv  llama_server: exiting due to model loading error',
];
const MISSING = [
  '0.00.005.640 E common_fit_params: encountered an error while trying to fit params to free device memory: failed to load model',
  "0.00.005.659 E gguf_init_from_file: failed to open GGUF file '/m/nope.gguf' (No such file or directory)",
  '0.00.005.677 E llama_model_load: error loading model: llama_model_loader: failed to load model from /m/nope.gguf',
  '0.00.005.690 E llama_model_load_from_file_impl: failed to load model',
  "0.00.005.704 E cmn  common_init_: failed to load model '/m/nope.gguf'",
  "0.00.005.717 E srv    load_model: failed to load model, '/m/nope.gguf'",
  '0.00.005.731 I srv    operator(): operator(): cleaning up before exit...',
  '0.00.006.068 E srv  llama_server: exiting due to model loading error',
];
const BAD_FLAG = ['error: invalid argument: --no-such-flag', '0.00.003.282 I srv  llama_server: initializing ...'];

describe('why llama-server exited', () => {
  it('picks the line that explains the exit, not the echoes printed after it', () => {
    expect(explainFailure(TRUNCATED)).toBe(
      "llama_model_load: error loading model: tensor 'output.weight' data is not within the file bounds, model is corrupted or incomplete",
    );
    expect(explainFailure(MISSING)).toBe(
      "gguf_init_from_file: failed to open GGUF file '/m/nope.gguf' (No such file or directory)",
    );
    expect(explainFailure(BAD_FLAG)).toBe('error: invalid argument: --no-such-flag');
  });

  it('takes the level over the words: an info line that mentions a failure is no error', () => {
    const lines = [
      "0.1.2.3 E mtmd_init_from_file: error: Failed to load CLIP model from '/m/p.gguf'",
      '0.1.2.4 I srv    load_model: [mtmd] failed to get memory usage of mmproj',
      '0.1.2.5 E srv  llama_server: exiting due to model loading error',
    ];
    expect(explainFailure(lines)).toBe("mtmd_init_from_file: error: Failed to load CLIP model from '/m/p.gguf'");
  });

  it('falls back to the last error line, then the last line', () => {
    expect(explainFailure(['0.1.2.3 I a', '0.1.2.4 E srv  llama_server: exiting due to model loading error', ''])).toBe(
      'srv  llama_server: exiting due to model loading error',
    );
    expect(explainFailure(['0.1.2.3 I srv  loading', '0.1.2.4 I srv  slot ready', ''])).toBe('srv  slot ready');
    expect(explainFailure([])).toBeUndefined();
  });

  it('says how the process ended', () => {
    expect(exitStatus(1, undefined)).toBe('exit code 1');
    expect(exitStatus(undefined, 'SIGSEGV')).toBe('killed by SIGSEGV');
    expect(exitStatus(undefined, 'SIGKILL')).toMatch(/SIGKILL, often the out-of-memory killer/);
    expect(describeExit(1, undefined, BAD_FLAG)).toBe('error: invalid argument: --no-such-flag (exit code 1)');
    expect(describeExit(undefined, 'SIGKILL', [])).toBe(
      'llama-server killed by SIGKILL, often the out-of-memory killer; its log has no error line',
    );
  });
});
