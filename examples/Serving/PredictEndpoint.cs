using Microsoft.ML.Data;

namespace Cnn.Examples.Serving;

/// <summary><c>POST /predict</c>: an image in the body, the top classes out; 400 for a body that is not an image, 413 over the size limit.</summary>
public static class PredictEndpoint
{
    /// <summary>Handles one request.</summary>
    public static async Task<IResult> Handle(HttpRequest request, ImageClassifier classifier, ServingSettings settings, int? top, CancellationToken cancellation)
    {
        if (top is < 1) return Results.Problem(statusCode: 400, title: "Bad 'top'", detail: "?top= must be at least 1.");
        if (request.ContentLength > settings.MaxImageBytes) return TooLarge(settings);
        byte[] body;
        try
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, cancellation);
            body = buffer.ToArray();
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return TooLarge(settings); // a chunked body that grew past the limit
        }
        if (body.Length == 0)
            return Results.Problem(statusCode: 400, title: "No image", detail: "Send the image file (PNG, JPEG, BMP, GIF, WebP) as the request body.");
        MLImage image;
        try
        {
            image = MLImage.CreateFromStream(new MemoryStream(body, writable: false));
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            return Results.Problem(statusCode: 400, title: "Not an image",
                detail: $"The body ({body.Length} bytes) is not an image this server can decode; send a PNG, JPEG, BMP, GIF or WebP file.");
        }
        using (image)
            return Results.Ok(new PredictResponse(classifier.Predict(image, top ?? settings.TopK)));
    }

    private static IResult TooLarge(ServingSettings settings) => Results.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Image too large",
        detail: $"The body is larger than {settings.MaxImageBytes} bytes (the server's MaxImageBytes).");
}
