import winston from 'winston';

export type Logger = winston.Logger;

/** JSON lines on stdout (or the given transport, for tests), one object per event. */
export function createLogger(level: string, transport?: winston.transport): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [transport ?? new winston.transports.Console()],
  });
}
