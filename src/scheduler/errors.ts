import { CorralError } from '../errors.js';

/** A model that can never fit under the configured limits: answering at once beats thrashing. */
export class InsufficientMemory extends CorralError {
  override readonly status = 507;
  override readonly type = 'server_error';
}
