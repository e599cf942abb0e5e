/**
 * Structured JSON logs (pino) on stderr, so stdout stays for what a command prints for people and scripts.
 * Level from APILOG_LOG_LEVEL (default: warn for interactive commands, set per command).
 */
import { pino, type Logger } from 'pino';
import { logLevel as kafkaLogLevel, type logCreator } from 'kafkajs';

export type { Logger };

export function createLogger(name: string, level = process.env['APILOG_LOG_LEVEL'] ?? 'warn'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}

/** Routes kafkajs's own log lines into a pino logger. */
export function kafkaLogCreator(logger: Logger): logCreator {
  return () => ({ namespace, level, log }) => {
    const { message, ...extra } = log;
    const fields = { component: 'kafkajs', namespace, ...extra };
    // Our idempotent producers resend the same batch themselves (producer/apiLogger.ts), so kafkajs's bounded
    // retries do not weaken them; its start-up warning about that would only alarm users.
    if (message.startsWith('Limiting retries for the idempotent producer')) return void logger.debug(fields, message);
    // kafkajs logs every error response at ERROR, including the ones it retries (a coordinator still loading):
    // those are warnings here; what finally fails reaches the caller as an exception.
    if (level === kafkaLogLevel.ERROR && namespace !== 'Connection') logger.error(fields, message);
    else if (level === kafkaLogLevel.ERROR) logger.warn(fields, message);
    else if (level === kafkaLogLevel.WARN) logger.warn(fields, message);
    else if (level === kafkaLogLevel.INFO) logger.info(fields, message);
    else logger.debug(fields, message);
  };
}

/** The kafkajs level that lets through what the pino logger would print. */
export function kafkaLevelFor(logger: Logger): kafkaLogLevel {
  switch (logger.level) {
    case 'debug':
    case 'trace':
      return kafkaLogLevel.DEBUG;
    case 'info':
      return kafkaLogLevel.INFO;
    case 'warn':
      return kafkaLogLevel.WARN;
    case 'silent':
      return kafkaLogLevel.NOTHING;
    default:
      return kafkaLogLevel.ERROR;
  }
}
