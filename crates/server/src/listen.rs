//! A TCP listener that holds at most N connections open: the next accept
//! waits for a permit, so extra clients queue in the kernel's backlog
//! instead of each costing a task and buffers here.

use crate::AppState;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Limited {
    tcp: TcpListener,
    permits: Arc<Semaphore>,
    state: Arc<AppState>,
}

impl Limited {
    pub fn new(tcp: TcpListener, max: usize, state: Arc<AppState>) -> Limited {
        Limited {
            tcp,
            permits: Arc::new(Semaphore::new(max.max(1))),
            state,
        }
    }
}

/// A connection; its permit returns when it closes.
pub struct Conn {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
    state: Arc<AppState>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.state
            .metrics
            .open_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl axum::serve::Listener for Limited {
    type Io = Conn;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Conn, Self::Addr) {
        loop {
            let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
                // The semaphore is never closed; wait rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            match self.tcp.accept().await {
                Ok((s, addr)) => {
                    let _ = s.set_nodelay(true);
                    self.state
                        .metrics
                        .open_connections
                        .fetch_add(1, Ordering::Relaxed);
                    let conn = Conn {
                        inner: s,
                        _permit: permit,
                        state: Arc::clone(&self.state),
                    };
                    return (conn, addr);
                }
                // Out of file descriptors and the like: back off, as axum does.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
